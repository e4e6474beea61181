#include "alspec/spec/batch_decoder.h"

#include "alspec/core/error.h"
#include "batch_attention.h"

namespace alspec {

BatchDecoder::BatchDecoder(const Model& model, Device& device)
    : forward_(model, device), attention_(std::make_unique<BatchAttention>()) {}

BatchDecoder::~BatchDecoder() = default;

const float* BatchDecoder::step(std::span<const BatchRow> rows, std::span<const PrefillChunk> prefills) {
  sessions_.clear();
  tokens_.clear();
  for (const BatchRow& r : rows) {
    if (r.session == nullptr || r.spec == nullptr || r.stats == nullptr) {
      throw_invalid_argument("batched decode: a row without session, speculation settings or statistics");
    }
    sessions_.push_back(r.session);
    tokens_.push_back(r.token);
  }
  return forward_.step(sessions_, tokens_, [&](int layer, float* attn) { attention_->run(rows, layer, attn); }, prefills);
}

}  // namespace alspec
