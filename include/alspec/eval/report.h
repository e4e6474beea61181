// report.md: the Table-1-style summary of results.json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace alspec::eval {

// Rows are tasks; columns exact, static and each speculative (mode, lambda); one table per S.
// Cells "score / hit rate"; then the mean KL and top-1 tables and the passkey grids.
std::string render_report(const nlohmann::json& results);

}  // namespace alspec::eval
