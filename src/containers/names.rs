//! Container names: checked when the user gives one, generated (Docker's
//! `adjective_surname` style) when not.

use super::Error;

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "eager", "fervent", "gentle", "happy", "jolly", "keen", "kind", "lucid", "merry",
    "nifty", "patient", "quiet", "quirky", "relaxed", "sharp", "stoic", "sweet", "tender", "upbeat", "vivid", "wise",
    "zealous", "bold", "dreamy", "elated", "frosty", "hopeful", "modest", "serene",
];

const SURNAMES: &[&str] = &[
    "babbage",
    "bohr",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "euler",
    "fermi",
    "gauss",
    "hopper",
    "hypatia",
    "kepler",
    "knuth",
    "lamport",
    "lovelace",
    "maxwell",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "wozniak",
    "yalow",
    "goldberg",
    "liskov",
    "hamilton",
    "ramanujan",
];

/// Docker's rule for container and volume names:
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters.
pub fn follows_docker_rule(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) && name.len() <= 128
}

pub fn check(name: &str) -> Result<(), Error> {
    if follows_docker_rule(name) {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

/// A free name chosen from the container's (random) id.
pub fn generate(id: &str, taken: impl Fn(&str) -> bool) -> String {
    let seed = u64::from_str_radix(id.get(..16).unwrap_or("0"), 16).unwrap_or(0);
    let adjective = ADJECTIVES[pick(seed, ADJECTIVES.len())];
    let surname = SURNAMES[((seed >> 32) % SURNAMES.len() as u64) as usize];
    let base = format!("{adjective}_{surname}");
    (1..).map(|n| if n == 1 { base.clone() } else { format!("{base}{n}") }).find(|n| !taken(n)).unwrap_or(base)
}

/// An index below `len` chosen by `seed`.
fn pick(seed: u64, len: usize) -> usize {
    let len64 = u64::try_from(len).unwrap_or(u64::MAX).max(1);
    usize::try_from(seed % len64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert!(check("web-1").is_ok() && check("a.b_c").is_ok());
        assert!(check("").is_err() && check("-x").is_err() && check("a/b").is_err() && check("a b").is_err());
    }

    #[test]
    fn generated_names_avoid_taken_ones() {
        let id = "0123456789abcdef0123456789abcdef";
        let first = generate(id, |_| false);
        assert!(check(&first).is_ok() && first.contains('_'));
        let second = generate(id, |n| n == first);
        assert_eq!(second, format!("{first}2"));
    }
}
