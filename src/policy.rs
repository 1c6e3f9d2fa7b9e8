//! Small policy enums shared by every stage. Each round-trips through
//! `Display`/`FromStr` and (de)serialises with the same spelling.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `RecommendationType` -> `recommendation type`.
fn words(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A name none of a policy's values goes by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{given}`: expected one of {}", .expected.join(", "))]
pub struct UnknownName {
    /// The policy, in words ("recommendation type").
    pub kind: String,
    /// The name given.
    pub given: String,
    /// The names it could have been.
    pub expected: &'static [&'static str],
}

macro_rules! policy_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal $(| $alias:literal)*),+ $(,)? } default $default:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every accepted spelling, canonical names first.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                let lower = s.trim().to_ascii_lowercase().replace('_', "-");
                match lower.as_str() {
                    $($text $(| $alias)* => Ok(Self::$variant),)+
                    _ => Err(UnknownName {
                        kind: words(stringify!($name)),
                        given: s.to_string(),
                        expected: Self::NAMES,
                    }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

policy_enum! {
    /// What the user optimises for (Thoth's recommendation types).
    RecommendationType {
        /// Newest versions, minimal guidance.
        Latest => "latest",
        /// Well-tested stacks, most guidance (the default).
        Stable => "stable",
        /// Lax checks, for experiments.
        Testing => "testing",
        /// Optimise AI/ML performance.
        Performance => "performance",
        /// Minimise known vulnerabilities.
        Security => "security",
    } default Stable
}

policy_enum! {
    /// How Dependency Monkey picks stacks.
    DecisionType {
        /// Enumerate stacks newest first.
        All => "all",
        /// Sample stacks at random.
        Random => "random",
    } default All
}

policy_enum! {
    /// Which predictor steers the search.
    PredictorKind {
        /// Chosen from the recommendation type.
        Auto => "auto",
        /// Adaptive simulated annealing.
        AdaptiveSimulatedAnnealing => "adaptive-simulated-annealing" | "asa" | "adaptivesimulatedannealing",
        /// Temporal-difference learning.
        TemporalDifference => "temporal-difference" | "td" | "temporaldifference",
        /// Monte Carlo tree search.
        Mcts => "mcts",
        /// Greedy hill climbing.
        HillClimbing => "hill-climbing" | "hillclimbing",
        /// Uniform random walk.
        RandomWalk => "random-walk" | "randomwalk",
        /// Newest-first with occasional hops.
        ApproximatingLatest => "approximating-latest" | "approximatinglatest",
        /// Uniform sampling of the candidate space.
        Sampling => "sampling",
    } default Auto
}

policy_enum! {
    /// The lock format `advise` writes.
    OutputFormat {
        /// Pipenv's Pipfile.lock (the default).
        PipfileLock => "pipfile-lock" | "pipenv",
        /// Pinned requirements.txt with hashes.
        Requirements => "requirements" | "requirements-txt",
        /// PEP 751 pylock.toml.
        Pylock => "pylock" | "pylock-toml",
    } default PipfileLock
}

policy_enum! {
    /// `.thoth.yaml`'s `requirements_format`.
    RequirementsFormat {
        /// Pipfile + Pipfile.lock.
        Pipenv => "pipenv",
        /// requirements.txt.
        Pip => "pip",
        /// requirements.in compiled to requirements.txt.
        PipTools => "pip-tools" | "pip-compile",
    } default Pipenv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in RecommendationType::NAMES {
            let parsed: RecommendationType = name.parse().unwrap();
            assert_eq!(parsed.to_string(), *name);
        }
        for name in PredictorKind::NAMES {
            assert_eq!(name.parse::<PredictorKind>().unwrap().to_string(), *name);
        }
        assert_eq!(
            "TD".parse::<PredictorKind>().unwrap(),
            PredictorKind::TemporalDifference
        );
        assert_eq!(
            "AdaptiveSimulatedAnnealing"
                .parse::<PredictorKind>()
                .unwrap(),
            PredictorKind::AdaptiveSimulatedAnnealing
        );
        assert_eq!(RecommendationType::default(), RecommendationType::Stable);
        assert!(
            "fastest"
                .parse::<RecommendationType>()
                .unwrap_err()
                .to_string()
                .contains("latest, stable")
        );
    }
}
