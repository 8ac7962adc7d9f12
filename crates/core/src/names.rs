//! [`names!`]: the one way a fieldless enum gets its string names (settings, CLI values, URL
//! values): the canonical lower-case name of each variant, accepted aliases, `ALL` in listing
//! order, `as_str`, `Display`, and a lenient `FromStr` (trimmed, any case) whose error names the
//! expected values. Knows nothing of the enums it serves.

/// `"a"`, `"a or b"`, `"a, b or c"`.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// `names!(Enum, "what it is", { Variant => "name" | "alias" …, … });`
macro_rules! names {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $ty {
            /// Every value, in the order lists show them.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// Every value's canonical name, in [`Self::ALL`]'s order.
            pub const NAMES: [&'static str; [$($name),+].len()] = [$($name),+];

            /// The canonical name (command line, URL, form).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = String;

            /// The canonical names and their aliases, trimmed, in any case.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let key = s.trim().to_ascii_lowercase();
                $(
                    if key == $name $(|| key == $alias)* {
                        return Ok($ty::$variant);
                    }
                )+
                Err(format!(
                    "unknown {} '{}' (expected {})",
                    $what,
                    s.trim(),
                    $crate::names::one_of(&[$($name),+])
                ))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::one_of;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Fruit {
        Apple,
        Pear,
    }
    names!(Fruit, "fruit", { Apple => "apple" | "malus", Pear => "pear" });

    #[test]
    fn names_round_trip_and_parse_leniently() {
        assert_eq!(Fruit::ALL, [Fruit::Apple, Fruit::Pear]);
        assert_eq!(Fruit::NAMES, ["apple", "pear"]);
        for f in Fruit::ALL {
            assert_eq!(f.to_string().parse::<Fruit>(), Ok(f));
        }
        assert_eq!(" Malus ".parse::<Fruit>(), Ok(Fruit::Apple));
        assert_eq!("PEAR".parse::<Fruit>(), Ok(Fruit::Pear));
        assert_eq!(
            "kiwi".parse::<Fruit>(),
            Err("unknown fruit 'kiwi' (expected apple or pear)".into())
        );
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
        assert_eq!(one_of(&["a"]), "a");
    }
}
