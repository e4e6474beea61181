#include "alspec/server/chat_template.h"

#include <gtest/gtest.h>

#include "alspec/core/error.h"

namespace alspec::server {
namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Name a colour."}};

TEST(ChatTemplate, DetectsFamiliesFromTemplateText) {
  // Fragments of the real templates' Jinja text.
  EXPECT_EQ(detect_chat_format("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"), ChatFormat::kLlama3);
  EXPECT_EQ(detect_chat_format("{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"),
            ChatFormat::kChatml);
  EXPECT_EQ(detect_chat_format("{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"),
            ChatFormat::kGemma);
  EXPECT_EQ(detect_chat_format("{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"), ChatFormat::kLlama2);
  EXPECT_EQ(detect_chat_format(""), ChatFormat::kPlain);
  EXPECT_EQ(detect_chat_format("{% for m in messages %}{{ m.content }}{% endfor %}"), ChatFormat::kPlain);
}

TEST(ChatTemplate, NamesRoundTripAndUnknownNameIsAnError) {
  for (auto f : {ChatFormat::kLlama3, ChatFormat::kChatml, ChatFormat::kLlama2, ChatFormat::kGemma, ChatFormat::kPlain}) {
    EXPECT_EQ(parse_chat_format(chat_format_name(f)), f);
  }
  EXPECT_THROW(parse_chat_format("jinja"), Error);
}

TEST(ChatTemplate, Llama3) {
  const ChatPrompt p = format_chat(ChatFormat::kLlama3, kConversation);
  EXPECT_EQ(p.text,
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Chatml) {
  const ChatPrompt p = format_chat(ChatFormat::kChatml, kConversation);
  EXPECT_EQ(p.text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(p.stop, std::vector<std::string>{"<|im_end|>"});
}

TEST(ChatTemplate, Llama2PutsSystemIntoFirstInstructionAndSeparatesTurns) {
  const ChatPrompt p = format_chat(ChatFormat::kLlama2, kConversation);
  EXPECT_EQ(p.text, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Name a colour. [/INST]");
}

TEST(ChatTemplate, GemmaHasNoSystemRoleAndCallsTheAssistantModel) {
  const ChatPrompt p = format_chat(ChatFormat::kGemma, kConversation);
  EXPECT_EQ(p.text,
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
            "<start_of_turn>user\nName a colour.<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, PlainDefault) {
  const ChatPrompt p = format_chat(ChatFormat::kPlain, kConversation);
  EXPECT_EQ(p.text, "System: Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: Name a colour.\nAssistant:");
  EXPECT_EQ(p.stop, std::vector<std::string>{"\nUser:"});
}

}  // namespace
}  // namespace alspec::server
