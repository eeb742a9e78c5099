//! Algorithms by name: the one table from a name (`reel abr simulate --algorithm`,
//! `reel play --algorithm`) to a fresh instance.

use crate::bb::BufferBased;
use crate::bola::Bola;
use crate::mpc::RobustMpc;
use crate::player::Algorithm;
use crate::rate::{RateBased, Throughput};
use crate::reel::Reel;

/// The names [`by_name`] knows, in the order they are reported (the offline optimum is not
/// an online algorithm and is not among them).
pub const NAMES: [&str; 6] = ["bb", "rb", "throughput", "bola", "rmpc", "reel"];

/// A fresh instance of the algorithm called `name`, or `None` for a name not in [`NAMES`].
pub fn by_name(name: &str) -> Option<Box<dyn Algorithm + Send>> {
    Some(match name {
        "bb" => Box::new(BufferBased),
        "rb" => Box::new(RateBased),
        "throughput" => Box::new(Throughput::new()),
        "bola" => Box::new(Bola),
        "rmpc" => Box::new(RobustMpc::new()),
        "reel" => Box::new(Reel::new()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_gives_the_algorithm_of_that_name() {
        for name in NAMES {
            let algorithm = by_name(name).expect("known name");
            assert_eq!(algorithm.name(), name);
        }
        assert!(by_name("optimum").is_none());
        assert!(by_name("").is_none());
    }
}
