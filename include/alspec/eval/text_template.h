// "{field}" placeholders filled from a JSON object ("{{" and "}}" are literal braces).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace alspec::eval {

// Strings are inserted as they are, numbers and booleans as JSON text. Throws
// Error(kInvalidArgument, "<where>: field '<f>' ...") for a missing field or unbalanced brace.
std::string render_template(const std::string& text, const nlohmann::json& fields, const std::string& where);

}  // namespace alspec::eval
