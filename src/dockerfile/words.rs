//! Variable substitution and word splitting, as Docker's shell lexer does
//! it for the instructions it substitutes in: `$V`, `${V}`, `${V:-word}`,
//! `${V-word}`, `${V:+word}`, `${V+word}`, `${V:?message}`; single quotes
//! literal, double quotes expand, the escape character quotes one
//! character. RUN, CMD and ENTRYPOINT are not substituted: their shell does it.

/// Looks a variable up: `None` when it is not set.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One word: quotes removed, variables expanded, blanks kept.
pub fn expand(text: &str, escape: char, vars: Lookup) -> Result<String, String> {
    let mut lexer = Lexer { chars: text.chars().collect(), at: 0, escape, vars, split: false };
    Ok(lexer.words(None)?.concat())
}

/// Words split at unquoted blanks (also those an unquoted variable
/// brings), each expanded: EXPOSE, VOLUME, COPY and ADD arguments.
pub fn expand_words(text: &str, escape: char, vars: Lookup) -> Result<Vec<String>, String> {
    let mut lexer = Lexer { chars: text.chars().collect(), at: 0, escape, vars, split: true };
    lexer.words(None)
}

/// Splits at unquoted blanks, keeping quotes and escapes (for `KEY=VALUE`
/// lists, whose values are expanded one by one afterwards).
pub fn split_raw(text: &str, escape: char) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (q, c) if c == escape && q != Some('\'') => {
                word.push(c);
                match chars.next() {
                    Some(next) => word.push(next),
                    None => break,
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if let Some(q) = quote {
        return Err(format!("unmatched {q} in {text:?}"));
    }
    if !word.is_empty() {
        words.push(word);
    }
    Ok(words)
}

struct Lexer<'a> {
    chars: Vec<char>,
    at: usize,
    escape: char,
    vars: Lookup<'a>,
    /// Split into words at unquoted blanks.
    split: bool,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.at += usize::from(c.is_some());
        c
    }

    /// Words up to the end, or up to `stop` (the `}` of `${V:-word}`,
    /// which is consumed).
    fn words(&mut self, stop: Option<char>) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut word = String::new();
        // A quoted empty string is still a word.
        let mut started = false;
        loop {
            let Some(c) = self.next() else {
                if stop.is_some() {
                    return Err("missing '}' in a ${…} substitution".into());
                }
                break;
            };
            match c {
                c if Some(c) == stop => break,
                c if c.is_whitespace() && self.split && stop.is_none() => {
                    if started || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    started = false;
                }
                '\'' => {
                    started = true;
                    self.single_quoted(&mut word)?;
                }
                '"' => {
                    started = true;
                    self.double_quoted(&mut word)?;
                }
                '$' => {
                    let value = self.variable()?;
                    if self.split && stop.is_none() {
                        // Unquoted: the value's blanks split it.
                        let mut parts = value.split(char::is_whitespace).peekable();
                        while let Some(part) = parts.next() {
                            word.push_str(part);
                            if parts.peek().is_some() && (started || !word.is_empty()) {
                                words.push(std::mem::take(&mut word));
                                started = false;
                            }
                        }
                    } else {
                        word.push_str(&value);
                    }
                }
                c if c == self.escape => match self.next() {
                    Some(escaped) => word.push(escaped),
                    None => word.push(c),
                },
                c => word.push(c),
            }
        }
        if started || !word.is_empty() || (!self.split && words.is_empty()) {
            words.push(word);
        }
        Ok(words)
    }

    fn single_quoted(&mut self, word: &mut String) -> Result<(), String> {
        loop {
            match self.next() {
                Some('\'') => return Ok(()),
                Some(c) => word.push(c),
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
            }
        }
    }

    fn double_quoted(&mut self, word: &mut String) -> Result<(), String> {
        loop {
            match self.next() {
                Some('"') => return Ok(()),
                Some('$') => {
                    let value = self.variable()?;
                    word.push_str(&value);
                }
                Some(c) if c == self.escape => match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        self.at += 1;
                        word.push(next);
                    }
                    _ => word.push(c),
                },
                Some(c) => word.push(c),
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
            }
        }
    }

    /// After a `$`: the variable's value (or the `$` itself when no name follows).
    fn variable(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.at += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok((self.vars)(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
            name.push(c);
            self.at += 1;
        }
        name
    }

    /// `${NAME}` or `${NAME<op>word}`, after the `{`.
    fn braced(&mut self) -> Result<String, String> {
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: ${} needs a variable name".into());
        }
        let value = (self.vars)(&name);
        let colon = self.peek() == Some(':');
        if colon {
            self.at += 1;
        }
        let op = self.next();
        if op == Some('}') && !colon {
            return Ok(value.unwrap_or_default());
        }
        let split = std::mem::replace(&mut self.split, false);
        let word = self.words(Some('}')).map(|w| w.concat());
        self.split = split;
        let word = word?;
        // With a colon, set-but-empty counts as unset.
        let set = value.as_deref().is_some_and(|v| !(colon && v.is_empty()));
        match op {
            Some('-') => Ok(if set { value.unwrap_or_default() } else { word }),
            Some('+') => Ok(if set { word } else { String::new() }),
            Some('?') if set => Ok(value.unwrap_or_default()),
            Some('?') => Err(if word.is_empty() {
                format!("{name}: is not allowed to be unset")
            } else {
                format!("{name}: {word}")
            }),
            _ => Err(format!("bad substitution in ${{{name}…}}: supported are :-, -, :+, +, :? and ?")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "A" => Some("one".into()),
            "E" => Some(String::new()),
            "P" => Some("80 443".into()),
            _ => None,
        }
    }

    fn ex(text: &str) -> String {
        expand(text, '\\', &vars).unwrap()
    }

    #[test]
    fn substitution_as_docker_does_it() {
        assert_eq!(ex("$A/${A}_x"), "one/one_x");
        assert_eq!(ex("${B:-def} ${E:-def} ${E-def} ${A:+set} ${B:+set}."), "def def  set .");
        assert_eq!(ex("'$A' \"$A\" \\$A"), "$A one $A");
        assert_eq!(ex("\"a\\\"b\\\\c\\d\""), "a\"b\\c\\d");
        assert_eq!(ex("${B:-${A}x}"), "onex");
        assert_eq!(ex("cost $5 $"), "cost  $"); // $5 is a (numeric) name, as in Docker
        assert!(expand("${B:?must be set}", '\\', &vars).unwrap_err().contains("must be set"));
        assert!(expand("'open", '\\', &vars).is_err());
        assert!(expand("${A", '\\', &vars).is_err());
        assert_eq!(expand("`$A", '`', &vars).unwrap(), "$A");
    }

    #[test]
    fn words_split_at_unquoted_blanks() {
        let w = |t: &str| expand_words(t, '\\', &vars).unwrap();
        assert_eq!(w("a  \"b c\" ''"), ["a", "b c", ""]);
        assert_eq!(w("$P 53/udp"), ["80", "443", "53/udp"]);
        assert_eq!(w("\"$P\""), ["80 443"]);
        assert_eq!(split_raw("A=\"x y\" B=z\\ w C", '\\').unwrap(), ["A=\"x y\"", "B=z\\ w", "C"]);
    }
}
