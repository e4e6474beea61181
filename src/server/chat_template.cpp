#include "alspec/server/chat_template.h"

#include "alspec/core/error.h"

namespace alspec::server {

ChatFormat detect_chat_format(std::string_view t) {
  // Most specific markers first: llama-3 templates also mention "[INST]" in some merges,
  // mistral templates use [INST] like llama-2.
  if (t.find("<|start_header_id|>") != std::string_view::npos) return ChatFormat::kLlama3;
  if (t.find("<|im_start|>") != std::string_view::npos) return ChatFormat::kChatml;
  if (t.find("<start_of_turn>") != std::string_view::npos) return ChatFormat::kGemma;
  if (t.find("[INST]") != std::string_view::npos) return ChatFormat::kLlama2;
  return ChatFormat::kPlain;
}

ChatFormat parse_chat_format(std::string_view name) {
  if (name == "llama3") return ChatFormat::kLlama3;
  if (name == "chatml") return ChatFormat::kChatml;
  if (name == "llama2") return ChatFormat::kLlama2;
  if (name == "gemma") return ChatFormat::kGemma;
  if (name == "plain") return ChatFormat::kPlain;
  throw_invalid_argument("--chat-format '" + std::string(name) + "' is not one of llama3, chatml, llama2, gemma, plain");
}

const char* chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::kLlama3: return "llama3";
    case ChatFormat::kChatml: return "chatml";
    case ChatFormat::kLlama2: return "llama2";
    case ChatFormat::kGemma: return "gemma";
    case ChatFormat::kPlain: return "plain";
  }
  return "?";
}

namespace {

ChatPrompt format_llama3(const std::vector<ChatMessage>& msgs) {
  ChatPrompt p;  // BOS (<|begin_of_text|>) comes from the tokenizer's add_bos
  for (const auto& m : msgs) p.text += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
  p.text += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  p.stop = {"<|eot_id|>"};
  return p;
}

ChatPrompt format_chatml(const std::vector<ChatMessage>& msgs) {
  ChatPrompt p;
  for (const auto& m : msgs) p.text += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  p.text += "<|im_start|>assistant\n";
  p.stop = {"<|im_end|>"};
  return p;
}

ChatPrompt format_llama2(const std::vector<ChatMessage>& msgs) {
  // The system prompt goes inside the first [INST] block; each completed exchange ends with
  // </s> and the next one starts with <s> (the first <s> is the tokenizer's BOS).
  ChatPrompt p;
  std::string system;
  bool first_user = true;
  bool open = false;  // an [INST] block awaits the assistant's answer
  for (const auto& m : msgs) {
    if (m.role == "system") {
      system += (system.empty() ? "" : "\n") + m.content;
    } else if (m.role == "assistant") {
      p.text += " " + m.content + " </s>";
      open = false;
    } else {
      if (!first_user || open) p.text += "<s>";
      p.text += "[INST] ";
      if (first_user && !system.empty()) p.text += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
      p.text += m.content + " [/INST]";
      first_user = false;
      open = true;
    }
  }
  if (first_user) {  // no user turn at all: still open an instruction block
    p.text += "[INST] ";
    if (!system.empty()) p.text += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
    p.text += " [/INST]";
  }
  return p;
}

ChatPrompt format_gemma(const std::vector<ChatMessage>& msgs) {
  // Gemma has no system role: the system text is prepended to the first user turn.
  ChatPrompt p;
  std::string system;
  for (const auto& m : msgs) {
    if (m.role == "system") {
      system += m.content + "\n\n";
      continue;
    }
    const std::string role = m.role == "assistant" ? "model" : m.role;
    std::string content = m.content;
    if (role == "user" && !system.empty()) {
      content = system + content;
      system.clear();
    }
    p.text += "<start_of_turn>" + role + "\n" + content + "<end_of_turn>\n";
  }
  if (!system.empty()) p.text += "<start_of_turn>user\n" + system + "<end_of_turn>\n";
  p.text += "<start_of_turn>model\n";
  p.stop = {"<end_of_turn>"};
  return p;
}

std::string capitalised(const std::string& role) {
  std::string r = role;
  if (!r.empty() && r[0] >= 'a' && r[0] <= 'z') r[0] = static_cast<char>(r[0] - 'a' + 'A');
  return r;
}

ChatPrompt format_plain(const std::vector<ChatMessage>& msgs) {
  ChatPrompt p;
  for (const auto& m : msgs) {
    p.text += capitalised(m.role) + ": " + m.content + (m.role == "system" ? "\n\n" : "\n");
  }
  p.text += "Assistant:";
  p.stop = {"\nUser:"};
  return p;
}

}  // namespace

ChatPrompt format_chat(ChatFormat f, const std::vector<ChatMessage>& messages) {
  switch (f) {
    case ChatFormat::kLlama3: return format_llama3(messages);
    case ChatFormat::kChatml: return format_chatml(messages);
    case ChatFormat::kLlama2: return format_llama2(messages);
    case ChatFormat::kGemma: return format_gemma(messages);
    case ChatFormat::kPlain: return format_plain(messages);
  }
  return format_plain(messages);
}

}  // namespace alspec::server
