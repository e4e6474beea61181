// How far one next-token distribution is from another: KL divergence and top-1 agreement.
#pragma once

#include <cstdint>
#include <vector>

namespace alspec::eval {

// A next-token distribution kept as logits plus their log-sum-exp (log p_i = logit_i - lse).
struct LogitRow {
  std::vector<float> logits;
  double lse = 0;
  int32_t argmax = 0;  // lowest index among equal maxima
};

LogitRow make_logit_row(const float* logits, int n_vocab);

// KL(p || q) = sum_i p_i (log p_i - log q_i) in double, fixed order; >= 0 up to rounding.
double kl_divergence(const LogitRow& p, const LogitRow& q);
double kl_divergence(const LogitRow& p, const float* q_logits, int n_vocab);

// Running sums over positions: mean KL and the fraction where the argmax tokens agree.
struct DistanceSum {
  double kl_sum = 0;
  int64_t top1_agree = 0;
  int64_t positions = 0;
  void add(const LogitRow& exact, const float* logits, int n_vocab);
};

}  // namespace alspec::eval
