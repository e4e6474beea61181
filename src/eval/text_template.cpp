#include "alspec/eval/text_template.h"

#include "alspec/core/error.h"

namespace alspec::eval {

std::string render_template(const std::string& text, const nlohmann::json& fields, const std::string& where) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const size_t close = text.find('}', i + 1);
      if (close == std::string::npos) throw_invalid_argument(where + ": unclosed '{' in template \"" + text + "\"");
      const std::string name = text.substr(i + 1, close - i - 1);
      if (!fields.is_object() || !fields.contains(name)) {
        throw_invalid_argument(where + ": field '" + name + "' is missing (template placeholder {" + name + "})");
      }
      const auto& v = fields.at(name);
      if (v.is_string()) {
        out += v.get<std::string>();
      } else if (v.is_number() || v.is_boolean()) {
        out += v.dump();
      } else {
        throw_invalid_argument(where + ": field '" + name + "' must be a string or number to fill {" + name + "}");
      }
      i = close;
    } else if (c == '}') {
      throw_invalid_argument(where + ": unmatched '}' in template \"" + text + "\" (write '}}' for a brace)");
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace alspec::eval
