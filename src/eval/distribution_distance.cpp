#include "alspec/eval/distribution_distance.h"

#include <cmath>

#include "alspec/spec/scoring.h"

namespace alspec::eval {
namespace {

int32_t argmax(const float* x, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

}  // namespace

LogitRow make_logit_row(const float* logits, int n_vocab) {
  LogitRow r;
  r.logits.assign(logits, logits + n_vocab);
  r.lse = log_sum_exp(logits, n_vocab);
  r.argmax = argmax(logits, n_vocab);
  return r;
}

double kl_divergence(const LogitRow& p, const float* q, int n_vocab) {
  const double q_lse = log_sum_exp(q, n_vocab);
  double kl = 0;
  for (int i = 0; i < n_vocab; ++i) {
    const double lp = static_cast<double>(p.logits[static_cast<size_t>(i)]) - p.lse;
    const double lq = static_cast<double>(q[i]) - q_lse;
    kl += std::exp(lp) * (lp - lq);
  }
  return kl;
}

double kl_divergence(const LogitRow& p, const LogitRow& q) {
  return kl_divergence(p, q.logits.data(), static_cast<int>(q.logits.size()));
}

void DistanceSum::add(const LogitRow& exact, const float* logits, int n_vocab) {
  kl_sum += kl_divergence(exact, logits, n_vocab);
  if (argmax(logits, n_vocab) == exact.argmax) ++top1_agree;
  ++positions;
}

}  // namespace alspec::eval
