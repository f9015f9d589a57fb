#include "common/dp/fft_convolution.h"

#include <fftw3.h>

#include <algorithm>
#include <complex>
#include <memory>
#include <mutex>

#include "common/util/error.h"

namespace sotto::dp {

namespace {

// FFTW's planner is not thread-safe; executing a plan is.
std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

struct FftwFree {
  void operator()(void* p) const { fftw_free(p); }
};
template <typename T>
using FftwBuffer = std::unique_ptr<T[], FftwFree>;

template <typename T>
FftwBuffer<T> allocate(std::size_t n) {
  auto* p = static_cast<T*>(fftw_malloc(sizeof(T) * n));
  if (!p) throw Error("fft_convolve: cannot allocate " + std::to_string(sizeof(T) * n) + " bytes");
  return FftwBuffer<T>(p);
}

struct Plans {
  fftw_plan forward_a, forward_b, backward;
  ~Plans() {
    std::lock_guard lock(planner_mutex());
    fftw_destroy_plan(forward_a);
    fftw_destroy_plan(forward_b);
    fftw_destroy_plan(backward);
  }
};

// The smallest 2^i·3^j at least n: sizes FFTW transforms fast, within 1.125x of n.
std::size_t fast_size(std::size_t n) {
  std::size_t best = 1;
  while (best < n) best *= 2;
  for (std::size_t p3 = 3; p3 < 2 * n; p3 *= 3) {
    std::size_t s = p3;
    while (s < n) s *= 2;
    best = std::min(best, s);
  }
  return best;
}

}  // namespace

std::vector<double> fft_convolve(std::span<const double> a, std::span<const double> b) {
  if (a.empty() || b.empty()) return {};
  const std::size_t out_size = a.size() + b.size() - 1;
  if (std::min(a.size(), b.size()) <= 32) {  // direct: exact and faster for a short factor
    std::vector<double> c(out_size, 0.0);
    for (std::size_t i = 0; i < a.size(); ++i) {
      for (std::size_t j = 0; j < b.size(); ++j) c[i + j] += a[i] * b[j];
    }
    return c;
  }
  const std::size_t n = fast_size(out_size);
  const std::size_t bins = n / 2 + 1;
  auto ra = allocate<double>(n), rb = allocate<double>(n);
  auto fa = allocate<fftw_complex>(bins), fb = allocate<fftw_complex>(bins);
  Plans plans{};
  {
    std::lock_guard lock(planner_mutex());
    plans.forward_a = fftw_plan_dft_r2c_1d(static_cast<int>(n), ra.get(), fa.get(), FFTW_ESTIMATE);
    plans.forward_b = fftw_plan_dft_r2c_1d(static_cast<int>(n), rb.get(), fb.get(), FFTW_ESTIMATE);
    plans.backward = fftw_plan_dft_c2r_1d(static_cast<int>(n), fa.get(), ra.get(), FFTW_ESTIMATE);
  }
  std::fill(ra.get(), ra.get() + n, 0.0);
  std::fill(rb.get(), rb.get() + n, 0.0);
  std::copy(a.begin(), a.end(), ra.get());
  std::copy(b.begin(), b.end(), rb.get());
  fftw_execute(plans.forward_a);
  fftw_execute(plans.forward_b);
  for (std::size_t k = 0; k < bins; ++k) {
    const std::complex<double> x(fa[k][0], fa[k][1]), y(fb[k][0], fb[k][1]);
    const auto z = x * y;
    fa[k][0] = z.real();
    fa[k][1] = z.imag();
  }
  fftw_execute(plans.backward);  // unnormalised: n times the convolution
  std::vector<double> c(out_size);
  const double scale = 1.0 / static_cast<double>(n);
  for (std::size_t k = 0; k < out_size; ++k) c[k] = ra[k] * scale;
  return c;
}

}  // namespace sotto::dp
