//! Skills (docs/protocol.md §4.5): directories with a `SKILL.md` whose instructions the model
//! loads with the `Skill` tool. Enabled ones are links in the server's skills directory
//! (`<data dir>/skills/<name>`, as real Letta links them into `~/.letta/skills/`); an agent's
//! memory and a project (`.agents/skills/`, or the older `.skills/`) may hold skills too.

use std::path::{Path, PathBuf};

use crate::memory::files::{field, front_matter};

/// The server's skills directory, where `skill_enable` links skills.
#[derive(Debug, Clone)]
pub struct Skills {
    dir: PathBuf,
}

/// A skill found for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its `SKILL.md`.
    pub path: PathBuf,
    /// Its content.
    pub content: String,
}

/// Bytes of a `SKILL.md` the server reads (larger ones are refused).
const MAX_SKILL_BYTES: u64 = 1024 * 1024;

impl Skills {
    /// The skills directory under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("skills"),
        }
    }

    /// Links the skill directory `path` (absolute, with a `SKILL.md`) as its directory's name,
    /// replacing a link of that name; returns the name and the link.
    pub fn enable(&self, path: &str) -> Result<(String, PathBuf), String> {
        let source = Path::new(path);
        if !source.is_absolute() || !source.exists() {
            return Err(format!("Path does not exist: {path}"));
        }
        if !source.join("SKILL.md").is_file() {
            return Err(format!("No SKILL.md found in {path}"));
        }
        let name = source
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| format!("{path} does not name a skill directory"))?
            .to_owned();
        std::fs::create_dir_all(&self.dir).map_err(|error| error.to_string())?;
        let link = self.dir.join(&name);
        if let Ok(metadata) = std::fs::symlink_metadata(&link) {
            if !metadata.is_symlink() {
                return Err(format!(
                    "{} already exists and is not a symlink — refusing to overwrite",
                    link.display()
                ));
            }
            std::fs::remove_file(&link).map_err(|error| error.to_string())?;
        }
        std::os::unix::fs::symlink(source, &link).map_err(|error| error.to_string())?;
        Ok((name, link))
    }

    /// Removes the link `name`.
    pub fn disable(&self, name: &str) -> Result<(), String> {
        if !is_name(name) {
            return Err(format!("Skill not found: {name}"));
        }
        let link = self.dir.join(name);
        match std::fs::symlink_metadata(&link) {
            Err(_) => Err(format!("Skill not found: {name}")),
            Ok(metadata) if !metadata.is_symlink() => Err(format!(
                "{name} is not a symlink — refusing to delete. Remove it manually if intended."
            )),
            Ok(_) => std::fs::remove_file(&link).map_err(|error| error.to_string()),
        }
    }

    /// The skill `id` as the model asks for it: from the project (`cwd`), then the agent's
    /// memory, then the server's skills directory.
    pub fn find(&self, id: &str, cwd: &Path, memory: Option<&Path>) -> Result<Found, String> {
        let not_found = || {
            format!(
                "Skill \"{id}\" not found. Check that the skill name is correct and that it appears in the \
                 available skills list."
            )
        };
        if !is_name(id) {
            return Err(not_found());
        }
        let roots = [
            Some(cwd.join(".agents").join("skills")),
            Some(cwd.join(".skills")),
            memory.map(|memory| memory.join("skills")),
            Some(self.dir.clone()),
        ];
        for root in roots.into_iter().flatten() {
            let path = root.join(id).join("SKILL.md");
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.len() > MAX_SKILL_BYTES {
                return Err(format!("{} is larger than {MAX_SKILL_BYTES} bytes", path.display()));
            }
            if let Ok(content) = std::fs::read_to_string(&path) {
                return Ok(Found { path, content });
            }
        }
        Err(not_found())
    }

    /// The skills of the server's directory and of the agent's memory, as the system prompt's
    /// `<available_skills>` block lists them (none: no block).
    pub fn available_block(&self, memory: Option<&Path>) -> Option<String> {
        let mut roots: Vec<(PathBuf, Vec<(String, String)>)> = Vec::new();
        for root in [memory.map(|memory| memory.join("skills")), Some(self.dir.clone())]
            .into_iter()
            .flatten()
        {
            let Ok(entries) = std::fs::read_dir(&root) else {
                continue;
            };
            let mut skills: Vec<(String, String)> = entries
                .filter_map(Result::ok)
                .filter_map(|entry| {
                    let name = entry.file_name().into_string().ok()?;
                    let path = entry.path().join("SKILL.md");
                    if std::fs::metadata(&path).ok()?.len() > MAX_SKILL_BYTES {
                        return None;
                    }
                    let raw = std::fs::read_to_string(path).ok()?;
                    let description = front_matter(&raw).description.unwrap_or_default();
                    let line = description.trim().lines().next().unwrap_or_default().to_owned();
                    Some((name, line))
                })
                .collect();
            if skills.is_empty() {
                continue;
            }
            skills.sort();
            roots.push((root, skills));
        }
        if roots.is_empty() {
            return None;
        }
        roots.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut lines = vec!["<available_skills>".to_owned()];
        for (index, (root, skills)) in roots.iter().enumerate() {
            if index > 0 {
                lines.push(String::new());
            }
            lines.push(root.display().to_string());
            for (n, (name, description)) in skills.iter().enumerate() {
                let last = n + 1 == skills.len();
                let (branch, indent) = if last {
                    ("└── ", "    ")
                } else {
                    ("├── ", "│   ")
                };
                lines.push(format!("{branch}{name}/"));
                let suffix = if description.is_empty() {
                    String::new()
                } else {
                    format!(" ({description})")
                };
                lines.push(format!("{indent}└── SKILL.md{suffix}"));
            }
        }
        lines.push("</available_skills>".to_owned());
        Some(lines.join("\n"))
    }
}

/// A skill's text for the model, as real Letta renders it: `<SKILL_DIR>` (and
/// `${CLAUDE_SKILL_DIR}`) replaced by its directory, which a header names when it holds more
/// than the `SKILL.md`; refused when its front matter says `disable-model-invocation: true`.
pub fn render(name: &str, found: &Found) -> Result<String, String> {
    if field(&found.content, "disable-model-invocation").as_deref() == Some("true") {
        return Err(format!(
            "Skill \"{name}\" is marked disable-model-invocation and can only be invoked directly by the user."
        ));
    }
    let dir = found.path.parent().unwrap_or(Path::new("/"));
    let shown = dir.display().to_string();
    let extras = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| !entry.file_name().to_string_lossy().eq_ignore_ascii_case("SKILL.md"))
        })
        .unwrap_or(false);
    let content = found
        .content
        .replace("<SKILL_DIR>", &shown)
        .replace("${CLAUDE_SKILL_DIR}", &shown);
    let header = if extras {
        format!("# Skill Directory: {shown}\n\n")
    } else {
        String::new()
    };
    Ok(format!("{header}{content}"))
}

/// Whether `name` can name a skill directory: not empty, no path separators, not `.`/`..`.
fn is_name(name: &str) -> bool {
    !name.is_empty() && !matches!(name, "." | "..") && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("SKILL.md"), text).unwrap();
        path
    }

    #[test]
    fn skills_are_linked_found_listed_and_unlinked() {
        let data = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let skills = Skills::new(data.path());
        let pdf = skill(
            elsewhere.path(),
            "pdf",
            "---\nname: pdf\ndescription: Read PDFs.\n---\nRun <SKILL_DIR>/extract.py",
        );
        std::fs::write(pdf.join("extract.py"), "").unwrap();
        let (name, link) = skills.enable(pdf.to_str().unwrap()).unwrap();
        assert_eq!((name.as_str(), link), ("pdf", data.path().join("skills/pdf")));
        assert!(
            skills.enable(pdf.to_str().unwrap()).is_ok(),
            "enabling again replaces the link"
        );
        assert_eq!(
            skills.enable("/no/such/dir").unwrap_err(),
            "Path does not exist: /no/such/dir"
        );
        let cwd = tempfile::tempdir().unwrap();
        let found = skills.find("pdf", cwd.path(), None).unwrap();
        let shown = render("pdf", &found).unwrap();
        let dir = data.path().join("skills/pdf");
        assert_eq!(
            shown,
            format!(
                "# Skill Directory: {0}\n\n---\nname: pdf\ndescription: Read PDFs.\n---\nRun {0}/extract.py",
                dir.display()
            )
        );
        // A project's skill of the same name comes first.
        skill(&cwd.path().join(".agents/skills"), "pdf", "project pdf");
        assert_eq!(skills.find("pdf", cwd.path(), None).unwrap().content, "project pdf");
        assert!(skills.find("../etc", cwd.path(), None).is_err());
        assert_eq!(
            skills.available_block(None).unwrap(),
            format!(
                "<available_skills>\n{}\n└── pdf/\n    └── SKILL.md (Read PDFs.)\n</available_skills>",
                data.path().join("skills").display()
            )
        );
        skills.disable("pdf").unwrap();
        assert_eq!(skills.disable("pdf").unwrap_err(), "Skill not found: pdf");
        assert!(skills.available_block(None).is_none());
    }

    #[test]
    fn a_skill_for_users_only_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = skill(dir.path(), "commit", "---\ndisable-model-invocation: true\n---\nx");
        let found = Found {
            path: path.join("SKILL.md"),
            content: std::fs::read_to_string(path.join("SKILL.md")).unwrap(),
        };
        assert!(
            render("commit", &found)
                .unwrap_err()
                .contains("disable-model-invocation")
        );
    }
}
