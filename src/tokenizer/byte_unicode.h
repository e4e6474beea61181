// GPT-2's reversible byte <-> printable-character mapping: byte-level BPE vocabularies store
// tokens as these characters (space = "Ġ", newline = "Ċ").
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace alspec::tokenizer_detail {

class ByteUnicode {
 public:
  static const ByteUnicode& get();

  // UTF-8 text of the character standing for byte b.
  const std::string& encode_byte(uint8_t b) const { return byte_to_text_[b]; }
  std::string encode(std::string_view bytes) const;
  // Maps characters back to bytes; characters outside the mapping are copied unchanged.
  std::string decode(std::string_view text) const;

 private:
  ByteUnicode();
  std::array<std::string, 256> byte_to_text_;
  std::array<int16_t, 512> cp_to_byte_{};  // mapped code points are all below 512; -1 = none
};

}  // namespace alspec::tokenizer_detail
