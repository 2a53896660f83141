//! The Debian mirror `cargo xtask images` downloads from: the one the host's own apt
//! already uses, so the project never names a mirror of its own.
//!
//! `TURING_DEBIAN_MIRROR`, when set, is used as it is. Otherwise the host's sources
//! are read the way apt reads them: `/etc/apt/sources.list`, then the `*.list`
//! (one-line format) and `*.sources` (deb822 format) files of
//! `/etc/apt/sources.list.d/` in name order. The parsing takes file text, so it is
//! tested without touching the host.

use std::fs;
use std::path::Path;

/// Overrides the mirror found in the host's apt sources.
pub const MIRROR_VARIABLE: &str = "TURING_DEBIAN_MIRROR";
/// The host's main sources file, in the one-line format.
const SOURCES_LIST: &str = "/etc/apt/sources.list";
/// The host's folder of further source files.
const SOURCES_PARTS: &str = "/etc/apt/sources.list.d";
/// Part of the file name of the keyring Debian's own archive is signed with.
const DEBIAN_KEYRING: &str = "debian-archive-keyring";

/// One enabled binary (`deb`) source: one repository URI with its suites.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Source {
    uri: String,
    suites: Vec<String>,
    components: Vec<String>,
    /// The `signed-by` option as written (keyring paths or fingerprints), or empty.
    signed_by: String,
}

/// The Debian mirror URI (without a trailing `/`): `TURING_DEBIAN_MIRROR` if set,
/// else the host's main Debian source.
pub fn debian_mirror() -> Result<String, String> {
    let variable = std::env::var(MIRROR_VARIABLE).ok();
    choose(variable.as_deref(), host_sources)
}

/// The override if it is set and not empty, else the mirror chosen from `sources`
/// (only read when needed, so an override works on a host without apt sources).
fn choose(
    override_value: Option<&str>,
    sources: impl FnOnce() -> Vec<Source>,
) -> Result<String, String> {
    if let Some(value) = override_value.map(str::trim).filter(|v| !v.is_empty()) {
        // The URI goes into a one-line sources entry, where a space would split it.
        if value.contains(char::is_whitespace) {
            return Err(format!(
                "{MIRROR_VARIABLE} must be one URI without spaces, not \"{value}\""
            ));
        }
        return Ok(value.trim_end_matches('/').to_owned());
    }
    main_archive(&sources()).ok_or_else(|| {
        format!(
            "no Debian mirror found in the host's apt sources ({SOURCES_LIST}, \
             {SOURCES_PARTS}/); set {MIRROR_VARIABLE} to a Debian mirror's URI"
        )
    })
}

/// The enabled `deb` sources of the host, in the order apt reads them. Files that
/// are missing or unreadable are skipped: they cannot name a mirror either.
fn host_sources() -> Vec<Source> {
    let mut sources = Vec::new();
    if let Ok(text) = fs::read_to_string(SOURCES_LIST) {
        sources.extend(parse_one_line(&text));
    }
    let mut parts: Vec<_> = fs::read_dir(SOURCES_PARTS)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    parts.sort();
    for path in parts {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(parse) = parser_for(name)
            && let Ok(text) = fs::read_to_string(&path)
        {
            sources.extend(parse(&text));
        }
    }
    sources
}

/// The parser for a file of `sources.list.d/` by its name, or `None` if apt does not
/// read it (`x.list.disabled-by-y`, `x.sources.bak`, editor backups...).
fn parser_for(name: &str) -> Option<fn(&str) -> Vec<Source>> {
    // apt ignores names with other characters than these (`x.list~`, `.#x.list`).
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid || Path::new(name).file_stem().is_none_or(|s| s.is_empty()) {
        return None;
    }
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("list") => Some(parse_one_line),
        Some("sources") => Some(parse_deb822),
        _ => None,
    }
}

/// The URI of the source that serves the main Debian archive, without a trailing
/// `/`: the first non-security source with the `main` component, preferring one
/// that is plainly Debian's (signed with Debian's archive keyring, or a URI ending
/// in `/debian`) over others such as a third-party repository listed first.
fn main_archive(sources: &[Source]) -> Option<String> {
    let candidates: Vec<&Source> = sources
        .iter()
        .filter(|s| {
            !s.uri.contains("security")
                && !s.suites.is_empty()
                && !s.suites.iter().any(|suite| suite.ends_with("-security"))
                && s.components.iter().any(|c| c == "main")
        })
        .collect();
    let debian = candidates.iter().find(|s| {
        s.signed_by.contains(DEBIAN_KEYRING) || s.uri.trim_end_matches('/').ends_with("/debian")
    });
    debian
        .or(candidates.first())
        .map(|s| s.uri.trim_end_matches('/').to_owned())
}

/// The enabled `deb` entries of a one-line format file (`sources.list`, `*.list`):
/// `deb [option=value ...] URI suite [component ...]`; `#` starts a comment
/// anywhere on a line, and `deb-src` lines are skipped.
fn parse_one_line(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb") else {
            continue;
        };
        // `deb-src` and anything else merely starting with "deb".
        if !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let mut rest = rest.trim_start();
        let mut signed_by = String::new();
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            for option in options.split_whitespace() {
                if let Some((key, value)) = option.split_once('=')
                    && key.eq_ignore_ascii_case("signed-by")
                {
                    signed_by = value.to_owned();
                }
            }
            rest = after;
        }
        // A `cdrom:[label with spaces]/` URI would split into words, and an
        // installation disc has no riscv64 packages anyway.
        if rest.trim_start().starts_with("cdrom:") {
            continue;
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        sources.push(Source {
            uri: uri.to_owned(),
            suites: vec![suite.to_owned()],
            components: words.map(str::to_owned).collect(),
            signed_by,
        });
    }
    sources
}

/// The enabled `deb` entries of a deb822 format file (`*.sources`): stanzas
/// separated by blank lines, `Field: value` lines continued on lines that start
/// with whitespace, `#` lines as comments, `Enabled: no` to switch a stanza off. A
/// stanza with several URIs gives one entry per URI.
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    // A trailing blank line ends the last stanza like the others.
    for line in text.lines().chain([""]) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            sources.extend(stanza_sources(&fields));
            fields.clear();
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    sources
}

/// The entries of one deb822 stanza, given its fields with lower-case names.
fn stanza_sources(fields: &[(String, String)]) -> Vec<Source> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let words =
        |name: &str| -> Vec<String> { field(name).split_whitespace().map(str::to_owned).collect() };
    // apt reads the value as a boolean: these are its spellings of "no".
    let disabled = matches!(
        field("enabled").to_ascii_lowercase().as_str(),
        "no" | "false" | "off" | "without" | "disable" | "0"
    );
    if disabled || !words("types").iter().any(|t| t == "deb") {
        return Vec::new();
    }
    let (suites, components) = (words("suites"), words("components"));
    let signed_by = field("signed-by").to_owned();
    words("uris")
        .into_iter()
        .map(|uri| Source {
            uri,
            suites: suites.clone(),
            components: components.clone(),
            signed_by: signed_by.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a default Debian installation: the security archive's stanza
    /// could as well come first, and comment lines sit inside stanzas.
    const DEB822_SECURITY_FIRST: &str = "\
Types: deb
# a snapshot of http://mirror.example/debian-security
URIs: http://mirror.example/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian/
Suites: trixie trixie-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn deb822_skips_the_security_stanza() {
        let sources = parse_deb822(DEB822_SECURITY_FIRST);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[1].suites, ["trixie", "trixie-updates"]);
        assert_eq!(sources[1].components, ["main", "contrib"]);
        assert_eq!(
            main_archive(&sources).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn deb822_enabled_no_and_source_only_stanzas_are_skipped() {
        let text = "\
Types: deb
URIs: http://off.example/debian
Suites: sid
Components: main
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: sid
Components: main

types: deb
uris: http://on.example/debian
suites: sid
components: main
enabled: yes
";
        let sources = parse_deb822(text);
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].uri, "http://on.example/debian");
    }

    #[test]
    fn deb822_continuation_lines_and_several_uris() {
        let text = "\
Types: deb
URIs: http://first.example/debian
 http://second.example/debian
Suites: sid
Components:
\tmain
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 AAAA
 -----END PGP PUBLIC KEY BLOCK-----
";
        let sources = parse_deb822(text);
        let uris: Vec<&str> = sources.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(
            uris,
            [
                "http://first.example/debian",
                "http://second.example/debian"
            ]
        );
        assert_eq!(sources[0].components, ["main"]);
        assert!(sources[0].signed_by.contains("BEGIN PGP"));
        assert_eq!(
            main_archive(&sources).as_deref(),
            Some("http://first.example/debian")
        );
    }

    #[test]
    fn one_line_with_options_and_comments() {
        let text = "\
# deb http://commented.example/debian sid main
deb-src http://src.example/debian sid main
deb [ arch=amd64,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] http://mirror.example/pub/debian/ sid main contrib # a comment
deb [arch=amd64] http://other.example/repo stable main
debfoo http://not-a-type.example/debian sid main
";
        let sources = parse_one_line(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].uri, "http://mirror.example/pub/debian/");
        assert_eq!(sources[0].suites, ["sid"]);
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(
            sources[0].signed_by,
            "/usr/share/keyrings/debian-archive-keyring.gpg"
        );
        assert_eq!(sources[1].signed_by, "");
        assert_eq!(
            main_archive(&sources).as_deref(),
            Some("http://mirror.example/pub/debian")
        );
    }

    #[test]
    fn one_line_skips_security_cdrom_and_flat_entries() {
        let text = "\
deb cdrom:[Example Disc 1 - Binary]/ sid main
deb http://security.example/debian-security sid-security main
deb http://mirror.example/security sid main
deb http://flat.example/debian ./
deb http://mirror.example/debian sid contrib
deb http://mirror.example/debian sid main
";
        let sources = parse_one_line(text);
        assert_eq!(sources.len(), 5);
        assert_eq!(
            main_archive(&sources).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn a_plainly_debian_source_wins_over_an_earlier_other_one() {
        let sources = parse_one_line(
            "deb http://vendor.example/apt stable main\n\
             deb http://mirror.example/debian sid main\n",
        );
        assert_eq!(
            main_archive(&sources).as_deref(),
            Some("http://mirror.example/debian")
        );
        // Signed with Debian's keyring, under a path not ending in /debian.
        let sources = parse_one_line(
            "deb http://vendor.example/apt stable main\n\
             deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://mirror.example/archive sid main\n",
        );
        assert_eq!(
            main_archive(&sources).as_deref(),
            Some("http://mirror.example/archive")
        );
        // Nothing plainly Debian's: the first main, non-security source.
        let sources = parse_one_line("deb http://vendor.example/apt stable main\n");
        assert_eq!(
            main_archive(&sources).as_deref(),
            Some("http://vendor.example/apt")
        );
    }

    #[test]
    fn only_list_and_sources_files_are_read() {
        assert!(parser_for("debian.sources").is_some());
        assert!(parser_for("vendor_x-1.0.list").is_some());
        for name in [
            "vendor.list.disabled-by-admin",
            "nodesource.sources.disabled-by-admin",
            "debian.sources.bak",
            "debian.list~",
            ".list",
            "README",
        ] {
            assert!(parser_for(name).is_none(), "{name}");
        }
    }

    #[test]
    fn the_environment_overrides_the_sources() {
        let unused = || -> Vec<Source> { panic!("the sources are not read") };
        assert_eq!(
            choose(Some(" http://override.example/debian/ "), unused).as_deref(),
            Ok("http://override.example/debian")
        );
        assert!(choose(Some("http://a.example/ x"), unused).is_err());
        // Empty means unset.
        let sources = || parse_deb822(DEB822_SECURITY_FIRST);
        assert_eq!(
            choose(Some(""), sources).as_deref(),
            Ok("http://mirror.example/debian")
        );
        assert_eq!(
            choose(None, sources).as_deref(),
            Ok("http://mirror.example/debian")
        );
    }

    #[test]
    fn no_mirror_is_a_one_line_error_naming_the_variable() {
        let error = choose(None, Vec::new).unwrap_err();
        assert!(error.contains(MIRROR_VARIABLE), "{error}");
        assert!(!error.contains('\n'), "{error}");
        let security_only =
            || parse_one_line("deb http://s.example/debian-security sid-security main\n");
        assert!(choose(None, security_only).is_err());
    }
}
