// libFuzzer entry point for the GGUF reader: any byte string must either parse or be rejected
// with alspec::Error — never crash, read out of bounds or allocate without bound. After a
// successful parse every key and tensor is touched through the public API.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "alspec/core/error.h"
#include "alspec/gguf/gguf_file.h"

namespace {

using alspec::Error;
using alspec::gguf::GgufFile;
using alspec::gguf::Value;
using alspec::gguf::ValueType;

volatile uint64_t g_sink;  // keeps reads from being optimised away

template <typename F>
void try_access(F fn) {
  try {
    fn();
  } catch (const Error&) {  // wrong type / out of range: expected for arbitrary input
  }
}

void touch(const Value& v) {
  try_access([&] { g_sink = g_sink + v.as_u64(); });
  try_access([&] { g_sink = g_sink + static_cast<uint64_t>(v.as_i64()); });
  try_access([&] { g_sink = g_sink + v.as_u32(); });
  try_access([&] { g_sink = g_sink + static_cast<uint64_t>(v.as_i32()); });
  try_access([&] { g_sink = g_sink + static_cast<uint64_t>(v.as_f32() != 0.0f); });
  try_access([&] { g_sink = g_sink + v.as_bool(); });
  try_access([&] { g_sink = g_sink + v.as_string().size(); });
  if (!v.is_array()) return;
  g_sink = g_sink + static_cast<uint32_t>(v.array_type());
  const size_t n = v.array_size();
  for (size_t i = 0; i < n; ++i) touch(v.at(i));
  try_access([&] { g_sink = g_sink + v.strings().size(); });
  try_access([&] { g_sink = g_sink + v.arrays().size(); });
  try_access([&] { g_sink = g_sink + v.to_f32_vector().size(); });
  try_access([&] { g_sink = g_sink + v.to_i32_vector().size(); });
  try_access([&] { g_sink = g_sink + v.to_i64_vector().size(); });
  try_access([&] { g_sink = g_sink + v.to_u64_vector().size(); });
  std::vector<uint8_t> encoded;
  v.encode(encoded);
  g_sink = g_sink + encoded.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<GgufFile> f;
  try {
    f = GgufFile::from_bytes(std::vector<uint8_t>(data, data + size), "fuzz.gguf");
  } catch (const Error&) {
    return 0;
  }
  for (const auto& key : f->keys()) {
    const Value* v = f->find(key);
    if (v == nullptr) __builtin_trap();  // every listed key must be findable
    touch(*v);
    try_access([&] { g_sink = g_sink + f->get_string(key).has_value(); });
    try_access([&] { g_sink = g_sink + f->get_u64(key).value_or(0); });
    try_access([&] { g_sink = g_sink + static_cast<uint64_t>(f->get_i64(key).value_or(0)); });
    try_access([&] { g_sink = g_sink + f->get_u32(key).value_or(0); });
    try_access([&] { g_sink = g_sink + f->get_f32(key).has_value(); });
    try_access([&] { g_sink = g_sink + f->get_bool(key).value_or(false); });
    try_access([&] { g_sink = g_sink + f->get_string_array(key).size(); });
    try_access([&] { g_sink = g_sink + f->get_f32_array(key).size(); });
    try_access([&] { g_sink = g_sink + f->get_i32_array(key).size(); });
  }
  for (const auto& t : f->tensors()) {
    if (f->find_tensor(t.name) != &t) __builtin_trap();
    // Read every byte so ASan catches a tensor pointing outside the buffer.
    uint64_t sum = 0;
    for (size_t i = 0; i < t.nbytes; ++i) sum += t.data[i];
    g_sink = g_sink + sum + t.n_elements + t.dims.size();
  }
  return 0;
}
