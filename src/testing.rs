//! Helpers shared by the crate's own randomized tests.

use proptest::test_runner::{Config, RngSeed};

/// A proptest configuration for CI: `cases` cases from the fixed `seed`, so every run on
/// every machine is the same, unless `PROPTEST_CASES` or `PROPTEST_RNG_SEED` ask for more
/// or other cases (to search longer by hand). Failures are saved under
/// `proptest-regressions/` and replayed first on later runs: commit that file with the fix.
pub(crate) fn fixed_proptest_config(cases: u32, seed: u64) -> Config {
    let from_env = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            from_env.cases
        } else {
            cases
        },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            from_env.rng_seed
        } else {
            RngSeed::Fixed(seed)
        },
        ..from_env
    }
}
