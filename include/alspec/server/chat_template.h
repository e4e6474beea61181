// Chat prompts: the GGUF `tokenizer.chat_template` is Jinja, which alspec does not interpret.
// Instead the template text is matched against the common families and a built-in formatter
// for that family renders the conversation; anything unrecognised uses the plain default.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace alspec::server {

enum class ChatFormat {
  kLlama3,  // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
  kChatml,  // <|im_start|>role\ncontent<|im_end|>\n
  kLlama2,  // [INST] <<SYS>>..<</SYS>> user [/INST] assistant </s><s>
  kGemma,   // <start_of_turn>user\ncontent<end_of_turn>\n (assistant role is "model")
  kPlain,   // default: "System: ..\n\nUser: ..\nAssistant: ..\n" (no template or unknown one)
};

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant" (others are passed through by name)
  std::string content;
};

struct ChatPrompt {
  std::string text;               // encode with add_special=true (BOS) and parse_special=true
  std::vector<std::string> stop;  // extra stop strings the format needs (end of the reply)
};

// Empty template -> kPlain.
ChatFormat detect_chat_format(std::string_view jinja_template);
ChatFormat parse_chat_format(std::string_view name);  // "llama3", "chatml", ...; throws Error
const char* chat_format_name(ChatFormat f);

// Renders the conversation and the opening of the assistant's reply.
ChatPrompt format_chat(ChatFormat f, const std::vector<ChatMessage>& messages);

}  // namespace alspec::server
