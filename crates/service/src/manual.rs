//! The man pages (section 8: keysteward is a system daemon in /usr/sbin), one per
//! subcommand as git has, and the bash and zsh completions, from the command line's own clap
//! definition; `keysteward generate-manual DIR` (hidden) writes them for scripts/package.

use std::path::Path;

/// Writes `NAME.8`, `NAME-SUBCOMMAND.8` for each visible subcommand, `NAME.bash` and
/// `_NAME` into `dir`.
pub fn write(dir: &Path, command: &clap::Command) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = command.get_name().to_owned();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).section("8").render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.8")), page)?;
    for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        let full = format!("{name}-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().name(full.clone())).section("8").render(&mut page)?;
        std::fs::write(dir.join(format!("{full}.8")), page)?;
    }
    for (shell, file) in [
        (clap_complete::Shell::Bash, format!("{name}.bash")),
        (clap_complete::Shell::Zsh, format!("_{name}")),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut command.clone(), name.clone(), &mut text);
        std::fs::write(dir.join(file), text)?;
    }
    Ok(())
}
