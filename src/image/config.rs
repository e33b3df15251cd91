//! What an image's config says about running it, and how `hutch run`'s
//! flags override it (Docker's rules).

use oci_spec::image::ImageConfiguration;

/// The run settings an image carries.
#[derive(Debug, Default, Clone)]
pub struct RunDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    pub exposed_ports: Vec<String>,
    /// Its VOLUMEs: each gets an anonymous volume.
    pub volumes: Vec<String>,
}

impl RunDefaults {
    pub fn from_config(image: &ImageConfiguration) -> RunDefaults {
        let Some(c) = image.config() else { return RunDefaults::default() };
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        RunDefaults {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            workdir: non_empty(c.working_dir()),
            user: non_empty(c.user()),
            stop_signal: non_empty(c.stop_signal()),
            exposed_ports: c.exposed_ports().clone().unwrap_or_default(),
            volumes: c.volumes().clone().unwrap_or_default(),
        }
    }

    /// The command to run: `--entrypoint` replaces the image's entrypoint
    /// and drops its Cmd (an empty one clears it); arguments replace Cmd.
    pub fn command(&self, entrypoint: Option<&str>, args: &[String]) -> Option<Vec<String>> {
        let (entry, default_cmd) = match entrypoint {
            Some("") => (Vec::new(), Vec::new()),
            Some(e) => (vec![e.to_string()], Vec::new()),
            None => (self.entrypoint.clone(), self.cmd.clone()),
        };
        let cmd = if args.is_empty() { default_cmd } else { args.to_vec() };
        let command: Vec<String> = entry.into_iter().chain(cmd).collect();
        (!command.is_empty()).then_some(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_override_the_image_as_in_docker() {
        let d = RunDefaults { entrypoint: strings(&["/init"]), cmd: strings(&["serve"]), ..Default::default() };
        assert_eq!(d.command(None, &[]), Some(strings(&["/init", "serve"])));
        assert_eq!(d.command(None, &strings(&["ls"])), Some(strings(&["/init", "ls"])));
        assert_eq!(d.command(Some("/bin/sh"), &[]), Some(strings(&["/bin/sh"])));
        assert_eq!(d.command(Some("/bin/sh"), &strings(&["-c", "id"])), Some(strings(&["/bin/sh", "-c", "id"])));
        assert_eq!(d.command(Some(""), &strings(&["id"])), Some(strings(&["id"])));
        assert_eq!(RunDefaults::default().command(None, &[]), None);
    }
}
