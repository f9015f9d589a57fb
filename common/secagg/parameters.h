// SecAgg+ security parameters: the neighbour degree k and the Shamir threshold t for a cohort of n clients, from
// the fraction δ of clients that may drop out and the fraction γ that may be corrupt (colluding with the server).
// Every caller takes k and t from here; they are never literals elsewhere.
//
// Model: each client's k neighbours are treated as a uniformly random k-subset of the other n - 1 clients (the
// randomly relabelled Harary graph of graph.h gives each node exactly that marginal). At most D = ceil(δ·n)
// clients drop and at most C = ceil(γ·n) are corrupt (rounded up: a rate stands for at least that many clients), all counted among the other n - 1 (the conservative case).
// Then X = surviving neighbours ~ Hypergeometric(n-1, n-1-D, k) and Y = corrupt neighbours ~
// Hypergeometric(n-1, C, k), whose tails are summed exactly in log space (lgamma).
//
// find_parameters returns the smallest even k (2 <= k <= n-2), or else k = n - 1, with the smallest t such that
//   (correctness) P[X < t]  <= 2^-η / n : every client keeps t neighbours alive to reconstruct its self-mask seed
//                 (or its mask key if it dropped), so by a union bound over the n clients the round fails with
//                 probability at most 2^-η;
//   (security)    P[Y >= t] <= 2^-σ / n : the corrupt neighbours of an honest client cannot pool t shares of
//                 either of its secrets, so by a union bound over n clients this fails with probability <= 2^-σ;
//   (both secrets) t > k/2 : an honest neighbour reveals at most one of a peer's two secrets, so the shares the
//                 server can collect from honest holders can never reach t for both b_i and the mask key of i;
//   and 2 <= t <= k.
// This is a conservative per-client union bound in the spirit of Bell et al. §4, not their exact bound. It does not
// cover what their full analysis also bounds: that the graph of honest survivors stays connected (a disconnected
// honest component would let the server learn that component's partial sum), nor an active server that tells
// different neighbours different things while corrupt neighbours also hand over both shares (that needs 2t > k + Y
// and the signed consistency round of the malicious variant, which Sotto's semi-honest variant does not run).
#pragma once

#include <cstdint>

namespace sotto::secagg {

struct SecAggParameters {
  std::uint32_t k = 0;  // neighbours per client (n - 1: complete graph, the original SecAgg)
  std::uint32_t t = 0;  // Shamir threshold
  // log2 of the per-client tail probabilities that the conditions above bound (-inf when exactly zero).
  double log2_correctness_failure = 0;  // log2 P[X < t]
  double log2_security_failure = 0;     // log2 P[Y >= t]; 0 (not bounded) from complete_graph_parameters
};

// See above. σ and η are in bits. Throws sotto::Error when n < 3, a rate is outside [0, 1) or not a number,
// σ or η is negative, or even k = n - 1 cannot meet the conditions (too many dropouts or corruptions for n).
SecAggParameters find_parameters(std::uint32_t n, double dropout_rate, double corruption_rate, double sigma = 40,
                                 double eta = 20);

// The original SecAgg: k = n - 1 and t = floor(k/2) + 1, the smallest threshold with t > k/2 (a corrupt-free
// server cannot get both secrets of anyone), which tolerates the most dropouts. Correctness is deterministic on the
// complete graph: throws sotto::Error unless the n - 1 - floor(δ·n) surviving neighbours are at least t, i.e. the
// round must survive floor(δ·n) dropouts. Also refuses n < 3 and δ outside [0, 1).
SecAggParameters complete_graph_parameters(std::uint32_t n, double dropout_rate);

// log2 P[H >= x] and log2 P[H < x] for H ~ Hypergeometric(population, successes, draws); -inf for an impossible
// event. Exposed for the tests and for logging the guarantees of a configuration.
double log2_hypergeometric_at_least(std::uint32_t population, std::uint32_t successes, std::uint32_t draws,
                                    std::uint32_t x);
double log2_hypergeometric_below(std::uint32_t population, std::uint32_t successes, std::uint32_t draws,
                                 std::uint32_t x);

}  // namespace sotto::secagg
