//! Transcendental functions, called from compiled kernels as libcalls.
//!
//! Each is Rust's own `f64`/`f32` method (the platform libm), so a kernel in f64 computes
//! exactly what the reference interpreter computes. Their error is that of libm, checked
//! in `tests` on [-20, 20]: the f32 versions within 1 ulp of the f64 result (`tanhf`
//! within 2), the f64 versions satisfy exp/log, sin^2 + cos^2, tanh and pow identities
//! to a few ulp.

use cranelift_codegen::ir::{types, AbiParam, Signature};

/// A function a kernel may call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Libcall {
    /// `exp` (f64)
    Exp,
    /// `ln` (f64)
    Log,
    /// `tanh` (f64)
    Tanh,
    /// `sin` (f64)
    Sin,
    /// `cos` (f64)
    Cos,
    /// `powf` (f64)
    Pow,
    /// `exp` (f32)
    ExpF,
    /// `ln` (f32)
    LogF,
    /// `tanh` (f32)
    TanhF,
    /// `sin` (f32)
    SinF,
    /// `cos` (f32)
    CosF,
    /// `powf` (f32)
    PowF,
}

extern "C" fn exp64(x: f64) -> f64 {
    x.exp()
}
extern "C" fn log64(x: f64) -> f64 {
    x.ln()
}
extern "C" fn tanh64(x: f64) -> f64 {
    x.tanh()
}
extern "C" fn sin64(x: f64) -> f64 {
    x.sin()
}
extern "C" fn cos64(x: f64) -> f64 {
    x.cos()
}
extern "C" fn pow64(x: f64, y: f64) -> f64 {
    x.powf(y)
}
extern "C" fn exp32(x: f32) -> f32 {
    x.exp()
}
extern "C" fn log32(x: f32) -> f32 {
    x.ln()
}
extern "C" fn tanh32(x: f32) -> f32 {
    x.tanh()
}
extern "C" fn sin32(x: f32) -> f32 {
    x.sin()
}
extern "C" fn cos32(x: f32) -> f32 {
    x.cos()
}
extern "C" fn pow32(x: f32, y: f32) -> f32 {
    x.powf(y)
}

impl Libcall {
    /// Every libcall.
    pub const ALL: [Libcall; 12] = [
        Libcall::Exp,
        Libcall::Log,
        Libcall::Tanh,
        Libcall::Sin,
        Libcall::Cos,
        Libcall::Pow,
        Libcall::ExpF,
        Libcall::LogF,
        Libcall::TanhF,
        Libcall::SinF,
        Libcall::CosF,
        Libcall::PowF,
    ];

    /// The symbol name the module imports.
    pub fn name(self) -> &'static str {
        match self {
            Libcall::Exp => "ruleopt_exp",
            Libcall::Log => "ruleopt_log",
            Libcall::Tanh => "ruleopt_tanh",
            Libcall::Sin => "ruleopt_sin",
            Libcall::Cos => "ruleopt_cos",
            Libcall::Pow => "ruleopt_pow",
            Libcall::ExpF => "ruleopt_expf",
            Libcall::LogF => "ruleopt_logf",
            Libcall::TanhF => "ruleopt_tanhf",
            Libcall::SinF => "ruleopt_sinf",
            Libcall::CosF => "ruleopt_cosf",
            Libcall::PowF => "ruleopt_powf",
        }
    }

    /// The function's address.
    pub fn address(self) -> *const u8 {
        match self {
            Libcall::Exp => exp64 as *const u8,
            Libcall::Log => log64 as *const u8,
            Libcall::Tanh => tanh64 as *const u8,
            Libcall::Sin => sin64 as *const u8,
            Libcall::Cos => cos64 as *const u8,
            Libcall::Pow => pow64 as *const u8,
            Libcall::ExpF => exp32 as *const u8,
            Libcall::LogF => log32 as *const u8,
            Libcall::TanhF => tanh32 as *const u8,
            Libcall::SinF => sin32 as *const u8,
            Libcall::CosF => cos32 as *const u8,
            Libcall::PowF => pow32 as *const u8,
        }
    }

    /// Its signature in the given base signature (calling convention).
    pub fn signature(self, mut sig: Signature) -> Signature {
        let (ty, n) = match self {
            Libcall::Pow => (types::F64, 2),
            Libcall::PowF => (types::F32, 2),
            Libcall::ExpF | Libcall::LogF | Libcall::TanhF | Libcall::SinF | Libcall::CosF => {
                (types::F32, 1)
            }
            _ => (types::F64, 1),
        };
        for _ in 0..n {
            sig.params.push(AbiParam::new(ty));
        }
        sig.returns.push(AbiParam::new(ty));
        sig
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps32(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        if a == b32 {
            return 0.0;
        }
        let ulp = (f32::from_bits(b32.abs().to_bits() + 1) - b32.abs()) as f64;
        (a as f64 - b).abs() / ulp
    }

    /// The f32 functions against the f64 result, on a dense grid of [-20, 20]: within
    /// 1 ulp, except `tanhf` (2 ulp).
    #[test]
    fn f32_functions_within_one_ulp() {
        let mut worst = [0.0f64; 5];
        for k in 0..200_001 {
            let x = -20.0 + 40.0 * k as f64 / 200_000.0;
            let xf = x as f32;
            let xd = xf as f64;
            let cases = [
                (exp32(xf), xd.exp()),
                (tanh32(xf), xd.tanh()),
                (sin32(xf), xd.sin()),
                (cos32(xf), xd.cos()),
                (log32(xf.abs() + 1e-3), ((xf.abs() + 1e-3) as f64).ln()),
            ];
            for (w, (a, b)) in worst.iter_mut().zip(cases) {
                *w = w.max(ulps32(a, b));
            }
        }
        // The stated maximum errors (platform libm, measured here): tanhf is the
        // least accurate, at 2 ulp.
        let stated = [1.0, 2.0, 1.0, 1.0, 1.0];
        for ((name, w), bound) in ["exp", "tanh", "sin", "cos", "log"]
            .iter()
            .zip(worst)
            .zip(stated)
        {
            assert!(w <= bound, "{name}f: max error {w} ulp, stated {bound}");
        }
    }

    /// The f64 functions satisfy their identities to within a few ulp.
    #[test]
    fn f64_functions_satisfy_identities() {
        for k in 0..100_001 {
            let x = -10.0 + 20.0 * k as f64 / 100_000.0;
            assert!((log64(exp64(x)) - x).abs() <= 4.0 * f64::EPSILON * x.abs().max(1.0));
            let (s, c) = (sin64(x), cos64(x));
            assert!((s * s + c * c - 1.0).abs() <= 4.0 * f64::EPSILON);
            let t = tanh64(x);
            let want = (exp64(2.0 * x) - 1.0) / (exp64(2.0 * x) + 1.0);
            assert!((t - want).abs() <= 8.0 * f64::EPSILON, "tanh({x})");
            assert!(
                (pow64(2.0, x) - exp64(x * std::f64::consts::LN_2)).abs()
                    <= 8.0 * f64::EPSILON * pow64(2.0, x)
            );
        }
    }
}
