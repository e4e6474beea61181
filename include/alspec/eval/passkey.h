// Passkey retrieval items: a random number hidden at a given depth of a haystack of a given length.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "alspec/eval/task.h"

namespace alspec::eval {

// Builds samples x lengths x depths items (order: length, depth, sample). The haystack is a run of
// the filler text starting at a seeded offset; the needle goes to the sentence boundary nearest to
// `depth` of it. The prompt's token count (BOS included) is the target length, give or take the few
// tokens a re-tokenisation shifts; meta holds {passkey, length (actual), target_length, depth}.
std::vector<TaskItem> make_passkey_items(const TaskSpec& task, const Tokenizer& tokenizer);

}  // namespace alspec::eval
