//! Container mode's settings: environment variables (spec "Inputs and settings"), read with figment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use figment::Figment;
use figment::providers::Serialized;
use serde::Deserialize;

/// The variables container mode reads; every other variable is ignored.
pub const ENV_KEYS: &[&str] = &[
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

pub const DEFAULT_API_HOST: &str = "https://api.pennsieve.net";
pub const DEFAULT_API_HOST2: &str = "https://api2.pennsieve.net";

/// Raw text of the variables. Everything is read as text and parsed below, so a bad value gets an
/// error that names the variable rather than a serde message.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct RawEnv {
    environment: Option<String>,
    input_dir: Option<String>,
    output_dir: Option<String>,
    chunk_size_mb: Option<String>,
    compression_level: Option<String>,
    importer_enabled: Option<String>,
    pennsieve_api_key: Option<String>,
    pennsieve_api_secret: Option<String>,
    session_token: Option<String>,
    refresh_token: Option<String>,
    pennsieve_api_host: Option<String>,
    pennsieve_api_host2: Option<String>,
    integration_id: Option<String>,
    upload_concurrency: Option<String>,
    pennsieve_cognito_endpoint: Option<String>,
}

/// Container mode's settings after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerConfig {
    pub environment: String,
    pub input_dir: PathBuf,
    pub output_dir: PathBuf,
    pub chunk_size_mb: f64,
    pub compression_level: u32,
    pub importer_enabled: bool,
    pub import: ImportSettings,
}

/// What the importer needs: credentials, hosts and the workflow run. Shared by container mode
/// and `ts-processor import`.
#[derive(Clone, PartialEq)]
pub struct ImportSettings {
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
    pub session_token: Option<String>,
    pub refresh_token: Option<String>,
    pub api_host: String,
    pub api_host2: String,
    pub cognito_endpoint: Option<String>,
    /// `None` when `INTEGRATION_ID` is unset; container mode then makes up a UUID (as the original).
    pub integration_id: Option<String>,
    pub upload_concurrency: Option<usize>,
}

// Hand-written so that secrets never reach a log line through `{:?}`.
impl std::fmt::Debug for ImportSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("ImportSettings")
            .field("api_key", &self.api_key)
            .field("api_secret", &redact(&self.api_secret))
            .field("session_token", &redact(&self.session_token))
            .field("refresh_token", &redact(&self.refresh_token))
            .field("api_host", &self.api_host)
            .field("api_host2", &self.api_host2)
            .field("cognito_endpoint", &self.cognito_endpoint)
            .field("integration_id", &self.integration_id)
            .field("upload_concurrency", &self.upload_concurrency)
            .finish()
    }
}

impl ImportSettings {
    /// Reads the process environment (the same variables as container mode).
    pub fn from_env() -> Result<Self> {
        Self::from_raw(raw_from_vars(process_vars())?)
    }

    fn from_raw(raw: RawEnv) -> Result<Self> {
        let upload_concurrency = match non_empty(raw.upload_concurrency) {
            None => None,
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => bail!("UPLOAD_CONCURRENCY={text:?} is not a positive integer"),
            },
        };
        Ok(Self {
            api_key: non_empty(raw.pennsieve_api_key),
            api_secret: non_empty(raw.pennsieve_api_secret),
            session_token: non_empty(raw.session_token),
            refresh_token: non_empty(raw.refresh_token),
            api_host: non_empty(raw.pennsieve_api_host).unwrap_or_else(|| DEFAULT_API_HOST.into()),
            api_host2: non_empty(raw.pennsieve_api_host2)
                .unwrap_or_else(|| DEFAULT_API_HOST2.into()),
            cognito_endpoint: non_empty(raw.pennsieve_cognito_endpoint),
            integration_id: non_empty(raw.integration_id),
            upload_concurrency,
        })
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// The process environment as text (non-UTF-8 values are converted lossily).
fn process_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.to_string_lossy().into_owned())))
}

/// Values are passed on as text (figment's `Env` provider would turn `CHUNK_SIZE_MB=0.5` into a
/// number), so every value is parsed in one place.
fn raw_from_vars<K: AsRef<str>, V: Into<String>>(
    vars: impl IntoIterator<Item = (K, V)>,
) -> Result<RawEnv> {
    let map: BTreeMap<String, String> = vars
        .into_iter()
        .filter(|(k, _)| ENV_KEYS.contains(&k.as_ref()))
        .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
        .collect();
    Figment::new()
        .merge(Serialized::globals(map))
        .extract()
        .context("reading container settings from the environment")
}

impl ContainerConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(process_vars())
    }

    /// Reads an explicit set of variables (tests, and callers that embed the processor).
    pub fn from_vars<K: AsRef<str>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self> {
        let mut raw = raw_from_vars(vars)?;
        let environment = non_empty(raw.environment.take()).unwrap_or_else(|| "local".to_owned());
        let input_dir = non_empty(raw.input_dir.take())
            .context("INPUT_DIR is not set: it must name the directory holding the .nwb file")?;
        let output_dir = non_empty(raw.output_dir.take())
            .context("OUTPUT_DIR is not set: it must name the directory to write chunks into")?;
        let chunk_size_mb = match non_empty(raw.chunk_size_mb.take()) {
            None => 1.0,
            Some(text) => parse_chunk_size_mb(&text).context("CHUNK_SIZE_MB")?,
        };
        let compression_level = match non_empty(raw.compression_level.take()) {
            None => 0,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(level) if level <= 9 => level,
                _ => bail!("COMPRESSION_LEVEL={text:?} is not a gzip level (0 to 9)"),
            },
        };
        let importer_enabled = match raw.importer_enabled.take() {
            Some(text) => is_truthy(&text),
            None => environment != "local",
        };
        let mut import = ImportSettings::from_raw(raw)?;
        // The original makes up a run id when none is given; so do we.
        import
            .integration_id
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string());
        Ok(Self {
            environment,
            input_dir: PathBuf::from(input_dir),
            output_dir: PathBuf::from(output_dir),
            chunk_size_mb,
            compression_level,
            importer_enabled,
            import,
        })
    }
}

/// `true`/`1` in any case is true; anything else is false (spec, as the original).
pub fn is_truthy(text: &str) -> bool {
    let t = text.trim();
    t.eq_ignore_ascii_case("true") || t == "1"
}

/// A positive, finite number of MiB that gives at least one sample per chunk.
pub fn parse_chunk_size_mb(text: &str) -> Result<f64> {
    let value: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .with_context(|| format!("chunk size {text:?} is not a positive number of MiB"))?;
    if chunk_samples(value) == 0 {
        bail!("chunk size {text:?} MiB is smaller than one 8-byte sample");
    }
    Ok(value)
}

/// Samples per chunk file: `floor(CHUNK_SIZE_MB * 2^20 / 8)` (spec "Chunks").
pub fn chunk_samples(chunk_size_mb: f64) -> u64 {
    (chunk_size_mb * 1_048_576.0 / 8.0).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![("INPUT_DIR", "/in"), ("OUTPUT_DIR", "/out")]
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = ContainerConfig::from_vars(base()).unwrap();
        assert_eq!(c.environment, "local");
        assert_eq!(c.chunk_size_mb, 1.0);
        assert_eq!(c.compression_level, 0);
        assert!(!c.importer_enabled, "local defaults to no import");
        assert_eq!(c.import.api_host, DEFAULT_API_HOST);
        assert_eq!(c.import.api_host2, DEFAULT_API_HOST2);
        assert_eq!(c.import.cognito_endpoint, None);
        let run = c.import.integration_id.as_deref().unwrap();
        assert!(uuid::Uuid::parse_str(run).is_ok(), "{run}");
    }

    #[test]
    fn importer_defaults_to_on_outside_local() {
        let mut vars = base();
        vars.push(("ENVIRONMENT", "production"));
        assert!(ContainerConfig::from_vars(vars).unwrap().importer_enabled);
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
            ("", false),
        ] {
            let mut vars = base();
            vars.push(("ENVIRONMENT", "production"));
            vars.push(("IMPORTER_ENABLED", text));
            let c = ContainerConfig::from_vars(vars).unwrap();
            assert_eq!(c.importer_enabled, expected, "IMPORTER_ENABLED={text:?}");
        }
    }

    #[test]
    fn chunk_size_is_fractional_and_validated() {
        assert_eq!(chunk_samples(1.0), 131_072);
        assert_eq!(chunk_samples(0.5), 65_536);
        assert_eq!(chunk_samples(0.001), 131);
        assert_eq!(parse_chunk_size_mb("0.25").unwrap(), 0.25);
        for bad in ["0", "-1", "abc", "NaN", "inf", "0.000001"] {
            assert!(parse_chunk_size_mb(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn missing_directories_are_named() {
        let err = ContainerConfig::from_vars([("OUTPUT_DIR", "/out")]).unwrap_err();
        assert!(format!("{err:#}").contains("INPUT_DIR"), "{err:#}");
        let err = ContainerConfig::from_vars([("INPUT_DIR", "/in")]).unwrap_err();
        assert!(format!("{err:#}").contains("OUTPUT_DIR"), "{err:#}");
    }

    #[test]
    fn import_settings_are_read() {
        let mut vars = base();
        vars.extend([
            ("PENNSIEVE_API_HOST", "http://127.0.0.1:1"),
            ("PENNSIEVE_API_HOST2", "http://127.0.0.1:2"),
            ("PENNSIEVE_COGNITO_ENDPOINT", "http://127.0.0.1:3"),
            ("INTEGRATION_ID", "run-1"),
            ("UPLOAD_CONCURRENCY", "3"),
            ("PENNSIEVE_API_KEY", "key"),
        ]);
        let c = ContainerConfig::from_vars(vars).unwrap().import;
        assert_eq!(c.api_host, "http://127.0.0.1:1");
        assert_eq!(c.api_host2, "http://127.0.0.1:2");
        assert_eq!(c.cognito_endpoint.as_deref(), Some("http://127.0.0.1:3"));
        assert_eq!(c.integration_id.as_deref(), Some("run-1"));
        assert_eq!(c.upload_concurrency, Some(3));
        assert_eq!(c.api_key.as_deref(), Some("key"));
        let mut vars = base();
        vars.push(("UPLOAD_CONCURRENCY", "0"));
        let err = ContainerConfig::from_vars(vars).unwrap_err();
        assert!(format!("{err:#}").contains("UPLOAD_CONCURRENCY"), "{err:#}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut vars = base();
        vars.push(("PENNSIEVE_API_SECRET", "s3cr3t-value"));
        vars.push(("SESSION_TOKEN", "tok-value"));
        vars.push(("REFRESH_TOKEN", "refresh-value"));
        let text = format!("{:?}", ContainerConfig::from_vars(vars).unwrap());
        for secret in ["s3cr3t-value", "tok-value", "refresh-value"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}
