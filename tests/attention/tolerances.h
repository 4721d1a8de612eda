// Tolerances of the attention tests in one table, with the reason beside each.
#pragma once

namespace vdit::test::tol {

// f32 kernel vs double reference: online softmax in f32 over <= a few thousand keys, polynomial exp
// (rel. error < 2e-7); observed max|Δ|/max|ref| ~1e-6. The brief's bound.
constexpr double kKernelVsReference = 1e-5;
// LSE (natural log, magnitude <= ~10): absolute error of the f32 running max/sum.
constexpr double kLseAbs = 1e-5;
// Goldens: f32 arithmetic vs the reference's float64 outputs stored as f32 (README: "max-abs <= 1e-5").
constexpr double kGoldenOutput = 1e-5;
// ρ = exp(LSE_S - LSE_full) in f32 vs the reference's in-mask mass ratio (README: 1.6e-7 observed).
constexpr double kGoldenRho = 1e-5;

}  // namespace vdit::test::tol
