//! The run's settings as `train`'s flags, made from the one table of settings
//! ([`tripletlab_core::run::settings`]): each flag's name, aliases, help and default come from
//! there, and a given value is parsed by the setting's own parser, as the page's URL and form
//! parse it. Knows nothing of what `train` does with the configuration.

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches};
use tripletlab_core::run::TrainConfig;
use tripletlab_core::run::settings::{self, Kind, Setting};

/// The settings `train` takes as flags (the dataset, the recipe and the backend are `train`'s
/// own arguments: they are not part of a configuration).
pub const TRAIN_FLAGS: [Setting; 17] = settings::concat(settings::RUN, [settings::ENGINE]);

/// The settings given on the command line, in [`TRAIN_FLAGS`] order, as written.
#[derive(Clone, Debug, Default)]
pub struct SettingFlags {
    pub given: Vec<(Setting, String)>,
}

impl SettingFlags {
    /// Writes every given setting into `config`; an error names the flag.
    pub fn apply(&self, config: &mut TrainConfig) -> Result<(), String> {
        for (s, raw) in &self.given {
            let value = s
                .value
                .expect("a train flag is a setting of the configuration");
            (value.set)(config, raw).map_err(|m| format!("invalid setting --{}: {m}", s.flag))?;
        }
        Ok(())
    }
}

/// One setting's flag.
fn flag(s: Setting) -> Arg {
    let value = s
        .value
        .expect("a train flag is a setting of the configuration");
    let arg = Arg::new(s.key)
        .long(s.flag)
        .aliases(s.aliases.iter().copied());
    if value.kind == Kind::Switch {
        return arg.help(s.help).action(ArgAction::SetTrue);
    }
    let default = (value.get)(&TrainConfig::default());
    let help = if default.is_empty() {
        s.help.to_string()
    } else {
        format!("{} [default: {default}]", s.help)
    };
    arg.help(help)
        .action(ArgAction::Set)
        .value_name(s.flag)
        .allow_negative_numbers(true)
}

impl Args for SettingFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        TRAIN_FLAGS.into_iter().fold(cmd, |cmd, s| cmd.arg(flag(s)))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for SettingFlags {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = Self::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for s in TRAIN_FLAGS {
            let given = match s.value.map(|v| v.kind) {
                Some(Kind::Switch) => matches.get_flag(s.key).then(|| "on".to_string()),
                _ => matches.get_one::<String>(s.key).cloned(),
            };
            if let Some(raw) = given {
                self.given.retain(|(g, _)| *g != s);
                self.given.push((s, raw));
            }
        }
        Ok(())
    }
}
