//! The instruction sets the CPU kernels are compiled for, and which one runs.
//!
//! Every kernel exists once in source ([`super::simd`]) and is instantiated for each
//! instruction set; the best one the CPU has is chosen at run time, or the one the environment
//! variable `LANDSCAPE_CPU_KERNELS` names, so that each path can be measured and tested on any
//! machine that has it.

use std::fmt;

/// The environment variable that chooses the CPU kernels.
pub const KERNELS_VAR: &str = "LANDSCAPE_CPU_KERNELS";

/// An instruction set of the CPU kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512F: 32 registers of 16 floats.
    Avx512,
    /// AVX2 with FMA: 16 registers of 8 floats.
    Avx2,
    /// Arm NEON (every aarch64 CPU): 32 registers of 4 floats.
    Neon,
    /// Plain loops the compiler vectorizes for the build's baseline target.
    Portable,
}

impl Isa {
    /// Every instruction set, best first.
    pub const ALL: [Isa; 4] = [Isa::Avx512, Isa::Avx2, Isa::Neon, Isa::Portable];

    /// Its name in `LANDSCAPE_CPU_KERNELS`, logs and result files.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Neon => "neon",
            Isa::Portable => "portable",
        }
    }

    /// The engine name of the kernels on it in logs, benchmarks and `status.toml`:
    /// `cpu-kernels-avx512`, ...
    pub fn engine(self) -> &'static str {
        match self {
            Isa::Avx512 => "cpu-kernels-avx512",
            Isa::Avx2 => "cpu-kernels-avx2",
            Isa::Neon => "cpu-kernels-neon",
            Isa::Portable => "cpu-kernels-portable",
        }
    }

    /// Whether this CPU runs it.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            Isa::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The best instruction set this CPU runs.
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.available())
            .unwrap_or(Isa::Portable)
    }

    /// The instruction sets this CPU runs, best first.
    pub fn available_all() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.available()).collect()
    }

    /// The instruction set of `name` ([`Isa::name`]).
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `LANDSCAPE_CPU_KERNELS` asks for: `Ok(None)` for burn's operations (`off`, `0`,
/// `false`, `no`), `Ok(Some(isa))` for the kernels (unset, empty or `auto`: the best this CPU
/// runs; an instruction set's name: that one), and an error of one line for any other value or
/// an instruction set this CPU lacks.
pub fn requested_isa() -> Result<Option<Isa>, String> {
    let value = std::env::var(KERNELS_VAR).unwrap_or_default();
    match value.as_str() {
        "" | "auto" => Ok(Some(Isa::best())),
        "off" | "0" | "false" | "no" => Ok(None),
        name => match Isa::from_name(name) {
            Some(isa) if isa.available() => Ok(Some(isa)),
            Some(isa) => Err(format!(
                "{KERNELS_VAR}={name}: this CPU does not run {isa} (it runs {})",
                names(&Isa::available_all())
            )),
            None => Err(format!(
                "{KERNELS_VAR}={name}: expected off, auto or one of {}",
                names(&Isa::ALL)
            )),
        },
    }
}

/// The kernels' instruction set for this process, `None` where `LANDSCAPE_CPU_KERNELS` turns
/// them off. A value [`requested_isa`] rejects counts as unset here; the command line checks it
/// first and stops with its message.
pub fn kernel_isa() -> Option<Isa> {
    requested_isa().unwrap_or(Some(Isa::best()))
}

fn names(isas: &[Isa]) -> String {
    isas.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_best_is_available() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        assert!(Isa::best().available());
        assert!(Isa::Portable.available());
        assert_eq!(Isa::from_name("sse"), None);
        #[cfg(target_arch = "aarch64")]
        assert_eq!(Isa::best(), Isa::Neon);
        #[cfg(target_arch = "x86_64")]
        assert!(!Isa::Neon.available());
    }
}
