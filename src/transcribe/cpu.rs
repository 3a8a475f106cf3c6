//! Whether this CPU can run the whisper.cpp sottod was built with.
//!
//! `.cargo/config.toml` builds ggml's CPU code for x86-64-v3 rather than for
//! the building machine (`GGML_NATIVE=OFF`), so that a binary or a Debian
//! package runs on other machines. On an older x86-64 CPU its first vector
//! instruction would kill sottod with SIGILL and no word of why: [`check`]
//! asks ggml which instruction sets it was compiled for (its
//! `ggml_cpu_has_*`, compile-time answers that run no vector code) and says
//! in one line which of them this CPU lacks.

/// The one-line error for a CPU without `missing`.
pub fn refusal(missing: &[&str]) -> String {
    format!(
        "this CPU lacks {}, which the whisper.cpp built into this sottod uses; build sotto on this machine for it: make clean && GGML_NATIVE=ON make",
        missing.join(", ")
    )
}

/// Of the instruction sets `compiled` says ggml uses, those `has` says this
/// CPU lacks.
pub fn missing<'a>(
    sets: &[&'a str],
    compiled: impl Fn(&str) -> bool,
    has: impl Fn(&str) -> bool,
) -> Vec<&'a str> {
    sets.iter()
        .copied()
        .filter(|s| compiled(s) && !has(s))
        .collect()
}

/// Err with [`refusal`] when ggml was compiled for instructions this CPU
/// does not have.
pub fn check() -> Result<(), String> {
    let lacking = missing(&x86::SETS, x86::compiled, x86::has);
    if lacking.is_empty() {
        Ok(())
    } else {
        Err(refusal(&lacking))
    }
}

/// The x86-64 instruction sets ggml may be compiled for.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::os::raw::c_int;

    /// As `is_x86_feature_detected!` names them.
    pub const SETS: [&str; 12] = [
        "sse3",
        "ssse3",
        "avx",
        "avx2",
        "avxvnni",
        "bmi2",
        "fma",
        "f16c",
        "avx512f",
        "avx512vbmi",
        "avx512vnni",
        "avx512bf16",
    ];

    // ggml-cpu.c: each returns whether its `__AVX2__` (etc.) was defined
    // when ggml was compiled, and nothing else.
    unsafe extern "C" {
        fn ggml_cpu_has_sse3() -> c_int;
        fn ggml_cpu_has_ssse3() -> c_int;
        fn ggml_cpu_has_avx() -> c_int;
        fn ggml_cpu_has_avx2() -> c_int;
        fn ggml_cpu_has_avx_vnni() -> c_int;
        fn ggml_cpu_has_bmi2() -> c_int;
        fn ggml_cpu_has_fma() -> c_int;
        fn ggml_cpu_has_f16c() -> c_int;
        fn ggml_cpu_has_avx512() -> c_int;
        fn ggml_cpu_has_avx512_vbmi() -> c_int;
        fn ggml_cpu_has_avx512_vnni() -> c_int;
        fn ggml_cpu_has_avx512_bf16() -> c_int;
    }

    /// Was ggml compiled to use `set`?
    pub fn compiled(set: &str) -> bool {
        // SAFETY: functions without arguments or state, in the linked ggml.
        let has = unsafe {
            match set {
                "sse3" => ggml_cpu_has_sse3(),
                "ssse3" => ggml_cpu_has_ssse3(),
                "avx" => ggml_cpu_has_avx(),
                "avx2" => ggml_cpu_has_avx2(),
                "avxvnni" => ggml_cpu_has_avx_vnni(),
                "bmi2" => ggml_cpu_has_bmi2(),
                "fma" => ggml_cpu_has_fma(),
                "f16c" => ggml_cpu_has_f16c(),
                "avx512f" => ggml_cpu_has_avx512(),
                "avx512vbmi" => ggml_cpu_has_avx512_vbmi(),
                "avx512vnni" => ggml_cpu_has_avx512_vnni(),
                "avx512bf16" => ggml_cpu_has_avx512_bf16(),
                _ => 0,
            }
        };
        has != 0
    }

    /// Does this CPU have `set`?
    pub fn has(set: &str) -> bool {
        match set {
            "sse3" => std::is_x86_feature_detected!("sse3"),
            "ssse3" => std::is_x86_feature_detected!("ssse3"),
            "avx" => std::is_x86_feature_detected!("avx"),
            "avx2" => std::is_x86_feature_detected!("avx2"),
            "avxvnni" => std::is_x86_feature_detected!("avxvnni"),
            "bmi2" => std::is_x86_feature_detected!("bmi2"),
            "fma" => std::is_x86_feature_detected!("fma"),
            "f16c" => std::is_x86_feature_detected!("f16c"),
            "avx512f" => std::is_x86_feature_detected!("avx512f"),
            "avx512vbmi" => std::is_x86_feature_detected!("avx512vbmi"),
            "avx512vnni" => std::is_x86_feature_detected!("avx512vnni"),
            "avx512bf16" => std::is_x86_feature_detected!("avx512bf16"),
            _ => false,
        }
    }
}

/// Elsewhere ggml's baseline is the architecture's (NEON on aarch64).
#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    pub const SETS: [&str; 0] = [];
    pub fn compiled(_: &str) -> bool {
        false
    }
    pub fn has(_: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_without_what_ggml_was_compiled_for_is_refused_by_name() {
        let v3 = |s: &str| {
            matches!(
                s,
                "sse3" | "ssse3" | "avx" | "avx2" | "bmi2" | "fma" | "f16c"
            )
        };
        let old_cpu = |s: &str| matches!(s, "sse3" | "ssse3" | "avx");
        let lacking = missing(&x86::SETS, v3, old_cpu);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(lacking, ["avx2", "bmi2", "fma", "f16c"]);
        }
        let line = refusal(&["avx2", "fma"]);
        assert!(!line.contains('\n'));
        assert!(line.contains("lacks avx2, fma,"), "{line}");
        assert!(line.contains("GGML_NATIVE=ON make"), "{line}");
        // What ggml was not compiled for is not asked of the CPU.
        assert!(missing(&x86::SETS, |_| false, |_| false).is_empty());
    }

    #[test]
    fn whisper_cpp_is_built_for_x86_64_v3_and_this_machine_runs_it() {
        if cfg!(target_arch = "x86_64") {
            // .cargo/config.toml's GGML_NATIVE=OFF: the v3 sets, no AVX-512.
            for set in ["avx", "avx2", "bmi2", "fma", "f16c"] {
                assert!(x86::compiled(set), "ggml was built without {set}");
            }
            assert!(
                !x86::compiled("avx512f"),
                "ggml was built for this machine (AVX-512), not for x86-64-v3: GGML_NATIVE is not OFF, or whisper.cpp was built before it was (cargo clean -p whisper-rs-sys)"
            );
        }
        assert_eq!(check(), Ok(()));
    }
}
