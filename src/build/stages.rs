//! A Dockerfile's stages: the ARGs before the first FROM (the global
//! scope), then one stage per FROM with its name and instructions; which
//! stages a target needs (its base and what it copies or mounts from).

use super::Error;
use crate::dockerfile::{Args, Dockerfile, Instruction};

pub struct Stages {
    /// ARG instructions before the first FROM.
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
}

pub struct Stage {
    pub index: usize,
    /// `AS name`, lower case.
    pub name: Option<String>,
    pub from: Instruction,
    /// The base as written (before substitution).
    pub base: String,
    pub instructions: Vec<Instruction>,
}

impl Stages {
    pub fn split(dockerfile: Dockerfile, file: &str) -> Result<Stages, Error> {
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for instruction in dockerfile.instructions {
            if instruction.keyword == "FROM" {
                let words: Vec<String> = match &instruction.args {
                    Args::Shell(text) => text.split_whitespace().map(str::to_string).collect(),
                    Args::Exec(words) => words.clone(),
                };
                let name = match words.as_slice() {
                    [_] => None,
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
                    _ => return Err(syntax(file, &instruction, "expected FROM IMAGE [AS NAME]")),
                };
                if let Some(name) = &name {
                    if stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                        return Err(syntax(file, &instruction, &format!("stage name {name:?} is used twice")));
                    }
                }
                let base = words[0].clone();
                stages.push(Stage { index: stages.len(), name, from: instruction, base, instructions: Vec::new() });
            } else if let Some(stage) = stages.last_mut() {
                stage.instructions.push(instruction);
            } else if instruction.keyword == "ARG" {
                global_args.push(instruction);
            } else {
                return Err(syntax(file, &instruction, "only ARG may come before the first FROM"));
            }
        }
        if stages.is_empty() {
            return Err(Error::Usage(format!("{file}: no FROM instruction: a Dockerfile starts with FROM IMAGE")));
        }
        Ok(Stages { global_args, stages })
    }

    /// The stage `name` names (by name or index) among those before `before`.
    pub fn find(&self, name: &str, before: usize) -> Option<usize> {
        let by_index = name.parse::<usize>().ok().filter(|i| *i < before);
        let lower = name.to_ascii_lowercase();
        by_index.or_else(|| self.stages[..before].iter().position(|s| s.name.as_deref() == Some(lower.as_str())))
    }

    /// The stage `--target` names, else the last.
    pub fn target(&self, target: Option<&str>) -> Result<usize, Error> {
        match target {
            None => Ok(self.stages.len() - 1),
            Some(name) => self.find(name, self.stages.len()).ok_or_else(|| {
                let names: Vec<&str> = self.stages.iter().filter_map(|s| s.name.as_deref()).collect();
                Error::Usage(format!("--target {name}: no such stage (stages: {})", names.join(", ")))
            }),
        }
    }

    /// The stages `target` needs, in order (itself last). `expand`
    /// substitutes the global ARGs in a FROM or `--from` value.
    pub fn needed(&self, target: usize, expand: &dyn Fn(&str) -> String) -> Vec<usize> {
        let mut needed = vec![false; self.stages.len()];
        let mut todo = vec![target];
        while let Some(index) = todo.pop() {
            if std::mem::replace(&mut needed[index], true) {
                continue;
            }
            let stage = &self.stages[index];
            let mut refs = vec![expand(&stage.base)];
            for instruction in &stage.instructions {
                for flag in &instruction.flags {
                    match (flag.name.as_str(), &flag.value) {
                        ("from", Some(from)) => refs.push(expand(from)),
                        ("mount", Some(mount)) => {
                            refs.extend(mount.split(',').filter_map(|kv| kv.strip_prefix("from=")).map(expand))
                        }
                        _ => {}
                    }
                }
            }
            todo.extend(refs.iter().filter_map(|r| self.find(r, index)));
        }
        (0..self.stages.len()).filter(|i| needed[*i]).collect()
    }
}

fn syntax(file: &str, instruction: &Instruction, why: &str) -> Error {
    Error::Syntax(crate::dockerfile::SyntaxError {
        file: file.to_string(),
        line: instruction.line,
        instruction: format!("{}: ", instruction.keyword),
        why: why.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stages_a_target_needs() {
        let text = "ARG BASE=busybox\nFROM $BASE AS a\nFROM busybox AS b\nRUN x\nFROM a AS c\nCOPY --from=1 /x /x\nFROM scratch\nCOPY --from=c / /\n";
        let df = crate::dockerfile::parse("D", text).unwrap();
        let stages = Stages::split(df, "D").unwrap();
        assert_eq!(stages.global_args.len(), 1);
        let expand = |s: &str| s.replace("$BASE", "busybox");
        assert_eq!(stages.needed(3, &expand), vec![0, 1, 2, 3]);
        assert_eq!(stages.needed(1, &expand), vec![1]);
        assert_eq!(stages.target(Some("C")).unwrap(), 2);
        assert!(stages.target(Some("nope")).is_err());
        assert!(Stages::split(crate::dockerfile::parse("D", "RUN x\n").unwrap(), "D").is_err());
    }
}
