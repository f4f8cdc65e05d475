//! Settings from the environment, read once into the library types that use them: container
//! mode's (spec "Inputs and settings") and the importer's (also used by `ts-processor import`).
//!
//! Numbers and flags go through figment's `Env` provider into a typed struct, so a bad value is
//! an error naming its variable. Paths, hosts, ids and secrets are taken verbatim from the
//! environment instead: figment's `Env` syntax would rewrite them (`"…"` unquoted, `[…]` read as
//! an array, `0012` as the number 12), which would silently corrupt a secret, and paths need not
//! be UTF-8.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use figment::Figment;
use figment::providers::Env;
use pennsieve_client::{Config, Credentials, DEFAULT_API_HOST, DEFAULT_API2_HOST};
use serde::Deserialize;
use ts_convert::{ExecOptions, Options, chunk_samples};

/// Container mode's settings, validated.
#[derive(Debug)]
pub struct ContainerSettings {
    /// `ENVIRONMENT` (default `local`): outside `local` the importer is on by default.
    pub environment: String,
    /// `INPUT_DIR`: the directory holding the one `.nwb` file.
    pub input_dir: PathBuf,
    /// `OUTPUT_DIR`: where the chunk and metadata files go.
    pub output_dir: PathBuf,
    /// `CHUNK_SIZE_MB`, `MAX_OUTPUT_FILES`.
    pub options: Options,
    /// `COMPRESSION_LEVEL`.
    pub exec: ExecOptions,
    /// Set when the importer is on (`IMPORTER_ENABLED`, or by default outside `local`).
    pub import: Option<ImportSettings>,
}

/// What the importer needs: where the API is, who we are, and which workflow run to import into.
#[derive(Debug)]
pub struct ImportSettings {
    /// Hosts (`PENNSIEVE_API_HOST`, `PENNSIEVE_API_HOST2`, `PENNSIEVE_COGNITO_ENDPOINT`),
    /// `UPLOAD_CONCURRENCY` and the network limits (`PENNSIEVE_CONNECT_TIMEOUT_S`,
    /// `PENNSIEVE_REQUEST_TIMEOUT_S`, `PENNSIEVE_CALL_DEADLINE_S`).
    pub client: Config,
    /// `SESSION_TOKEN` (+ `REFRESH_TOKEN`), else `PENNSIEVE_API_KEY` + `PENNSIEVE_API_SECRET`.
    pub credentials: Credentials,
    /// `INTEGRATION_ID`: the workflow run.
    pub integration_id: String,
    /// `DELETE_AFTER_UPLOAD` (default false): remove each chunk file once it is uploaded.
    pub delete_after_upload: bool,
}

/// The numeric and flag variables, as figment's `Env` provider reads them.
#[derive(Debug, Default, Deserialize)]
struct Flags {
    #[serde(default, deserialize_with = "number")]
    chunk_size_mb: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    compression_level: Option<u32>,
    importer_enabled: Option<Flag>,
    delete_after_upload: Option<Flag>,
    #[serde(default, deserialize_with = "number")]
    upload_concurrency: Option<usize>,
    #[serde(default, deserialize_with = "number")]
    max_output_files: Option<u64>,
    #[serde(default, deserialize_with = "number")]
    pennsieve_connect_timeout_s: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pennsieve_request_timeout_s: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pennsieve_call_deadline_s: Option<f64>,
}

/// A number as figment's `Env` gives it: already a number (`2`, `0.5`) or still text (`1e15`,
/// which its syntax does not read as a float).
fn number<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Text(String),
    }
    let text = match Raw::deserialize(deserializer)? {
        Raw::Unsigned(n) => n.to_string(),
        Raw::Signed(n) => n.to_string(),
        Raw::Float(x) => x.to_string(),
        Raw::Text(t) => t,
    };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a valid number here")))
}

const FLAG_VARIABLES: [&str; 9] = [
    "CHUNK_SIZE_MB",
    "COMPRESSION_LEVEL",
    "IMPORTER_ENABLED",
    "DELETE_AFTER_UPLOAD",
    "UPLOAD_CONCURRENCY",
    "MAX_OUTPUT_FILES",
    "PENNSIEVE_CONNECT_TIMEOUT_S",
    "PENNSIEVE_REQUEST_TIMEOUT_S",
    "PENNSIEVE_CALL_DEADLINE_S",
];

impl Flags {
    fn from_env() -> Result<Self> {
        // Unset and blank variables both mean "use the default".
        let env = Env::raw().filter(|key| {
            FLAG_VARIABLES.iter().any(|v| key == *v)
                && std::env::var_os(key.as_str())
                    .is_some_and(|v| !v.to_string_lossy().trim().is_empty())
        });
        Figment::from(env)
            .extract()
            .context("reading settings from the environment")
    }
}

/// `IMPORTER_ENABLED`, `DELETE_AFTER_UPLOAD`: `true` or `1` in any case is true, anything else
/// false (as the original).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(from = "FlagValue")]
struct Flag(bool);

/// What figment's `Env` makes of a flag's text.
#[derive(Deserialize)]
#[serde(untagged)]
enum FlagValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl From<FlagValue> for Flag {
    fn from(value: FlagValue) -> Self {
        Flag(match value {
            FlagValue::Bool(b) => b,
            FlagValue::Number(n) => n == 1.0,
            FlagValue::Text(t) => is_truthy(&t),
        })
    }
}

/// `true`/`1` in any case is true; anything else is false (spec, as the original).
pub fn is_truthy(text: &str) -> bool {
    let t = text.trim();
    t.eq_ignore_ascii_case("true") || t == "1"
}

/// A variable as text, taken verbatim; unset or blank is `None`, not UTF-8 an error naming it.
fn text(name: &str) -> Result<Option<String>> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(value) => match value.into_string() {
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => Ok(Some(s)),
            Err(_) => bail!("{name} is not valid UTF-8"),
        },
    }
}

/// A directory variable: required, non-blank, any bytes.
fn directory(name: &str, purpose: &str) -> Result<PathBuf> {
    let value: Option<OsString> = std::env::var_os(name);
    match value {
        Some(v) if !v.to_string_lossy().trim().is_empty() => Ok(PathBuf::from(v)),
        _ => bail!("{name} is not set: it must name {purpose}"),
    }
}

impl ContainerSettings {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<Self> {
        let flags = Flags::from_env()?;
        let environment = text("ENVIRONMENT")?.unwrap_or_else(|| "local".to_owned());
        let input_dir = directory("INPUT_DIR", "the directory holding the .nwb file")?;
        let output_dir = directory("OUTPUT_DIR", "the directory to write chunks into")?;
        let chunk_size_mb = match flags.chunk_size_mb {
            None => Options::default().chunk_size_mb,
            Some(mb) => check_chunk_size_mb(mb).context("CHUNK_SIZE_MB")?,
        };
        let compression_level = match flags.compression_level {
            None => 0,
            Some(level) if level <= 9 => level,
            Some(level) => bail!("COMPRESSION_LEVEL={level} is not a gzip level (0 to 9)"),
        };
        let importer_enabled = match flags.importer_enabled {
            Some(Flag(on)) => on,
            None => environment != "local",
        };
        let import = if importer_enabled {
            // The original makes up a run id when none is given; so do we.
            let run = text("INTEGRATION_ID")?.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            Some(ImportSettings::read(run, &flags)?)
        } else {
            None
        };
        Ok(ContainerSettings {
            environment,
            input_dir,
            output_dir,
            options: Options {
                chunk_size_mb,
                max_files: flags
                    .max_output_files
                    .unwrap_or(ts_convert::DEFAULT_MAX_FILES),
                ..Options::default()
            },
            exec: ExecOptions {
                compression_level,
                ..ExecOptions::default()
            },
            import,
        })
    }
}

impl ImportSettings {
    /// Reads the importer's variables from the process environment, for run `integration_id`.
    pub fn from_env(integration_id: String) -> Result<Self> {
        Self::read(integration_id, &Flags::from_env()?)
    }

    fn read(integration_id: String, flags: &Flags) -> Result<Self> {
        let mut client = Config::with_hosts(
            text("PENNSIEVE_API_HOST")?.unwrap_or_else(|| DEFAULT_API_HOST.to_owned()),
            text("PENNSIEVE_API_HOST2")?.unwrap_or_else(|| DEFAULT_API2_HOST.to_owned()),
        );
        client.cognito_endpoint = text("PENNSIEVE_COGNITO_ENDPOINT")?;
        match flags.upload_concurrency {
            None => {}
            Some(0) => bail!("UPLOAD_CONCURRENCY=0: it must be a positive integer"),
            Some(n) => client.upload_concurrency = n,
        }
        for (name, value, field) in [
            (
                "PENNSIEVE_CONNECT_TIMEOUT_S",
                flags.pennsieve_connect_timeout_s,
                &mut client.connect_timeout,
            ),
            (
                "PENNSIEVE_REQUEST_TIMEOUT_S",
                flags.pennsieve_request_timeout_s,
                &mut client.request_timeout,
            ),
            (
                "PENNSIEVE_CALL_DEADLINE_S",
                flags.pennsieve_call_deadline_s,
                &mut client.call_deadline,
            ),
        ] {
            if let Some(seconds) = value {
                *field = Duration::try_from_secs_f64(seconds)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .with_context(|| {
                        format!("{name}={seconds} is not a positive number of seconds")
                    })?;
            }
        }
        Ok(ImportSettings {
            client,
            credentials: credentials()?,
            integration_id,
            delete_after_upload: flags.delete_after_upload.is_some_and(|Flag(on)| on),
        })
    }
}

/// A session token wins (its refresh token is optional), else an API key and secret.
fn credentials() -> Result<Credentials> {
    if let Some(token) = text("SESSION_TOKEN")? {
        return Ok(Credentials::session(token, text("REFRESH_TOKEN")?)?);
    }
    match (text("PENNSIEVE_API_KEY")?, text("PENNSIEVE_API_SECRET")?) {
        (Some(key), Some(secret)) => Ok(Credentials::api_key(key, secret)?),
        _ => bail!(
            "no Pennsieve credentials: set SESSION_TOKEN (and REFRESH_TOKEN), \
             or PENNSIEVE_API_KEY and PENNSIEVE_API_SECRET"
        ),
    }
}

/// A positive, finite number of MiB that gives at least one sample per chunk.
fn check_chunk_size_mb(mb: f64) -> Result<f64> {
    if !(mb.is_finite() && mb > 0.0) {
        bail!("chunk size {mb:?} is not a positive number of MiB");
    }
    if chunk_samples(mb) == 0 {
        bail!("chunk size {mb:?} MiB is smaller than one 8-byte sample");
    }
    Ok(mb)
}

/// `--chunk-size-mb`'s parser: the same rules as `CHUNK_SIZE_MB`.
pub fn parse_chunk_size_mb(text: &str) -> Result<f64> {
    let mb: f64 = text
        .trim()
        .parse()
        .with_context(|| format!("chunk size {text:?} is not a positive number of MiB"))?;
    check_chunk_size_mb(mb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    /// Runs `f` with exactly these variables set (figment's `Jail` serialises tests that touch
    /// the process environment and restores it afterwards).
    #[allow(clippy::result_large_err)] // figment's `Jail` closure returns its own large error
    fn with_env(vars: &[(&str, &str)], f: impl FnOnce() -> Result<(), String>) {
        Jail::expect_with(|jail| {
            for name in ALL_VARIABLES {
                // SAFETY: Jail holds a global lock while tests touch the environment.
                unsafe { std::env::remove_var(name) };
            }
            for (k, v) in vars {
                jail.set_env(k, v);
            }
            f().map_err(Into::into)
        });
    }

    const ALL_VARIABLES: [&str; 20] = [
        "MAX_OUTPUT_FILES",
        "DELETE_AFTER_UPLOAD",
        "PENNSIEVE_CONNECT_TIMEOUT_S",
        "PENNSIEVE_REQUEST_TIMEOUT_S",
        "PENNSIEVE_CALL_DEADLINE_S",
        "ENVIRONMENT",
        "INPUT_DIR",
        "OUTPUT_DIR",
        "CHUNK_SIZE_MB",
        "COMPRESSION_LEVEL",
        "IMPORTER_ENABLED",
        "PENNSIEVE_API_KEY",
        "PENNSIEVE_API_SECRET",
        "SESSION_TOKEN",
        "REFRESH_TOKEN",
        "PENNSIEVE_API_HOST",
        "PENNSIEVE_API_HOST2",
        "INTEGRATION_ID",
        "UPLOAD_CONCURRENCY",
        "PENNSIEVE_COGNITO_ENDPOINT",
    ];

    const DIRS: [(&str, &str); 2] = [("INPUT_DIR", "/in"), ("OUTPUT_DIR", "/out")];

    fn settings(extra: &[(&str, &str)]) -> Result<ContainerSettings, String> {
        let mut vars = DIRS.to_vec();
        vars.extend_from_slice(extra);
        let mut out = Err("not run".to_owned());
        with_env(&vars, || {
            out = ContainerSettings::from_env().map_err(|e| format!("{e:#}"));
            Ok(())
        });
        out
    }

    const KEY: [(&str, &str); 2] = [
        ("PENNSIEVE_API_KEY", "key"),
        ("PENNSIEVE_API_SECRET", "secret"),
    ];

    #[test]
    fn defaults_follow_the_spec() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.environment, "local");
        assert_eq!(s.input_dir, PathBuf::from("/in"));
        assert_eq!(s.options, Options::default());
        assert_eq!(s.exec, ExecOptions::default());
        assert!(s.import.is_none(), "local defaults to no import");
    }

    #[test]
    fn importer_defaults_to_on_outside_local_with_default_hosts_and_a_made_up_run() {
        let mut vars = vec![("ENVIRONMENT", "production")];
        vars.extend(KEY);
        let import = settings(&vars).unwrap().import.unwrap();
        assert_eq!(import.client.api_host, DEFAULT_API_HOST);
        assert_eq!(import.client.api2_host, DEFAULT_API2_HOST);
        assert_eq!(import.client.cognito_endpoint, None);
        assert!(uuid::Uuid::parse_str(&import.integration_id).is_ok());
        assert!(matches!(import.credentials, Credentials::ApiKey { .. }));
        assert!(!import.delete_after_upload, "off unless asked for");
    }

    #[test]
    fn delete_after_upload_is_a_flag() {
        for (text, expected) in [("true", true), ("1", true), ("false", false), ("no", false)] {
            let mut vars = vec![("IMPORTER_ENABLED", "true"), ("DELETE_AFTER_UPLOAD", text)];
            vars.extend(KEY);
            let import = settings(&vars).unwrap().import.unwrap();
            assert_eq!(import.delete_after_upload, expected, "{text:?}");
        }
    }

    #[test]
    fn importer_enabled_parsing() {
        for (text, expected) in [
            ("true", true),
            ("TRUE", true),
            ("True", true),
            ("1", true),
            ("false", false),
            ("0", false),
            ("yes", false),
            ("2", false),
            ("", true), // blank: the default, on in production
        ] {
            let mut vars = vec![("ENVIRONMENT", "production"), ("IMPORTER_ENABLED", text)];
            vars.extend(KEY);
            let s = settings(&vars).unwrap();
            assert_eq!(s.import.is_some(), expected, "IMPORTER_ENABLED={text:?}");
        }
    }

    #[test]
    fn numbers_are_parsed_and_bad_ones_name_their_variable() {
        let s = settings(&[("CHUNK_SIZE_MB", "0.25"), ("COMPRESSION_LEVEL", "6")]).unwrap();
        assert_eq!(s.options.chunk_size_mb, 0.25);
        assert_eq!(s.exec.compression_level, 6);
        assert_eq!(
            settings(&[("CHUNK_SIZE_MB", "2")])
                .unwrap()
                .options
                .chunk_size_mb,
            2.0
        );
        for (name, bad) in [
            ("CHUNK_SIZE_MB", "0"),
            ("CHUNK_SIZE_MB", "-1"),
            ("CHUNK_SIZE_MB", "abc"),
            ("CHUNK_SIZE_MB", "0.000001"),
            ("COMPRESSION_LEVEL", "10"),
            ("COMPRESSION_LEVEL", "fast"),
        ] {
            let err = settings(&[(name, bad)]).unwrap_err();
            assert!(err.contains(name), "{name}={bad}: {err}");
        }
        let mut vars = vec![("IMPORTER_ENABLED", "true"), ("UPLOAD_CONCURRENCY", "0")];
        vars.extend(KEY);
        let err = settings(&vars).unwrap_err();
        assert!(err.contains("UPLOAD_CONCURRENCY"), "{err}");
    }

    #[test]
    fn missing_directories_are_named() {
        let mut out = String::new();
        with_env(&[("OUTPUT_DIR", "/out")], || {
            out = format!("{:#}", ContainerSettings::from_env().unwrap_err());
            Ok(())
        });
        assert!(out.contains("INPUT_DIR"), "{out}");
    }

    #[test]
    fn import_settings_are_read_verbatim() {
        let vars = [
            ("IMPORTER_ENABLED", "1"),
            ("PENNSIEVE_API_HOST", "http://127.0.0.1:1/"),
            ("PENNSIEVE_API_HOST2", "http://127.0.0.1:2"),
            ("PENNSIEVE_COGNITO_ENDPOINT", "http://127.0.0.1:3"),
            ("INTEGRATION_ID", "0012"),
            ("UPLOAD_CONCURRENCY", "3"),
            ("SESSION_TOKEN", "\"[quoted]\""),
        ];
        let import = settings(&vars).unwrap().import.unwrap();
        assert_eq!(import.client.api_host, "http://127.0.0.1:1");
        assert_eq!(import.client.api2_host, "http://127.0.0.1:2");
        assert_eq!(
            import.client.cognito_endpoint.as_deref(),
            Some("http://127.0.0.1:3")
        );
        assert_eq!(import.integration_id, "0012");
        assert_eq!(import.client.upload_concurrency, 3);
        let Credentials::SessionToken { token, .. } = &import.credentials else {
            panic!("{:?}", import.credentials);
        };
        assert_eq!(token, "\"[quoted]\"");
    }

    #[test]
    fn network_limits_have_defaults_and_can_be_set() {
        let mut vars = vec![("IMPORTER_ENABLED", "true")];
        vars.extend(KEY);
        let client = settings(&vars).unwrap().import.unwrap().client;
        assert_eq!(
            client.call_deadline,
            pennsieve_client::DEFAULT_CALL_DEADLINE
        );
        assert!(client.call_deadline <= Duration::from_secs(300));
        vars.extend([
            ("PENNSIEVE_CONNECT_TIMEOUT_S", "2"),
            ("PENNSIEVE_REQUEST_TIMEOUT_S", "7.5"),
            ("PENNSIEVE_CALL_DEADLINE_S", "60"),
        ]);
        let client = settings(&vars).unwrap().import.unwrap().client;
        assert_eq!(client.connect_timeout, Duration::from_secs(2));
        assert_eq!(client.request_timeout, Duration::from_millis(7500));
        assert_eq!(client.call_deadline, Duration::from_secs(60));
        let mut vars = vec![
            ("IMPORTER_ENABLED", "true"),
            ("PENNSIEVE_CALL_DEADLINE_S", "0"),
        ];
        vars.extend(KEY);
        let err = settings(&vars).unwrap_err();
        assert!(err.contains("PENNSIEVE_CALL_DEADLINE_S"), "{err}");
    }

    #[test]
    fn an_enabled_importer_without_credentials_fails_before_any_work() {
        let err = settings(&[("IMPORTER_ENABLED", "true")]).unwrap_err();
        assert!(
            err.contains("SESSION_TOKEN") && err.contains("PENNSIEVE_API_KEY"),
            "{err}"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let vars = [
            ("IMPORTER_ENABLED", "true"),
            ("SESSION_TOKEN", "tok-value"),
            ("REFRESH_TOKEN", "refresh-value"),
        ];
        let text = format!("{:?}", settings(&vars).unwrap());
        for secret in ["tok-value", "refresh-value"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let mut vars = vec![("IMPORTER_ENABLED", "true")];
        vars.extend([
            ("PENNSIEVE_API_KEY", "key-value"),
            ("PENNSIEVE_API_SECRET", "s3cr3t"),
        ]);
        let text = format!("{:?}", settings(&vars).unwrap());
        assert!(!text.contains("s3cr3t"), "secret leaked: {text}");
        assert!(!text.contains("key-value"), "API key leaked: {text}");
    }

    #[test]
    fn chunk_size_flag_is_validated() {
        assert_eq!(parse_chunk_size_mb("0.25").unwrap(), 0.25);
        for bad in ["0", "-1", "abc", "NaN", "inf", "0.000001"] {
            assert!(parse_chunk_size_mb(bad).is_err(), "{bad} accepted");
        }
        // A tiny value is shown as written, not as 300 decimal digits.
        let err = parse_chunk_size_mb("1e-300").unwrap_err().to_string();
        assert!(err.contains("1e-300") && err.len() < 80, "{err}");
    }
}
