//! `--secret`: BuildKit's spelling (`id=ID,src=FILE`, `id=ID,env=VAR`, or a
//! bare `id=ID`) parsed once here, at the edge; the library only ever sees
//! the id and the secret's bytes.

use std::str::FromStr;

/// Where a secret's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `src=FILE` (or `source=FILE`).
    File(String),
    /// `env=VAR`.
    Env(String),
    /// Neither: the environment variable named like the id.
    Implied,
}

/// One `--secret` flag, checked but not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub source: SecretSource,
}

impl FromStr for SecretSpec {
    type Err = String;

    /// Fields in any order, the last of a kind winning; `src=` beats `env=`.
    fn from_str(spec: &str) -> Result<SecretSpec, String> {
        let mut id = None;
        let mut file = None;
        let mut env = None;
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => file = Some(v.to_string()),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", "file" | "env")) => {}
                _ => return Err(format!("invalid secret {spec:?}: unknown field {field:?}")),
            }
        }
        let id = id
            .filter(|i| !i.is_empty())
            .ok_or_else(|| format!("invalid secret {spec:?}: id=… is required"))?;
        let source = match (file, env) {
            (Some(path), _) => SecretSource::File(path),
            (None, Some(var)) => SecretSource::Env(var),
            (None, None) => SecretSource::Implied,
        };
        Ok(SecretSpec { id, source })
    }
}

impl SecretSpec {
    /// The secret's bytes, from its file or the environment.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        let id = &self.id;
        Ok(match &self.source {
            SecretSource::File(path) => {
                std::fs::read(path).map_err(|e| format!("secret {id}: {path}: {e}"))?
            }
            SecretSource::Env(var) => std::env::var(var)
                .map_err(|_| format!("secret {id}: environment variable {var} is not set"))?
                .into_bytes(),
            SecretSource::Implied => std::env::var(id)
                .map_err(|_| format!("secret {id}: give src=FILE or env=VAR"))?
                .into_bytes(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, source: SecretSource) -> SecretSpec {
        SecretSpec {
            id: id.to_string(),
            source,
        }
    }

    #[test]
    fn buildkit_spellings_parse() {
        let file = |p: &str| SecretSource::File(p.to_string());
        assert_eq!(
            "id=token,src=/run/t".parse(),
            Ok(spec("token", file("/run/t")))
        );
        assert_eq!(
            "source=/run/t,id=token,type=file".parse(),
            Ok(spec("token", file("/run/t")))
        );
        assert_eq!(
            "type=env,id=token,env=TOKEN".parse(),
            Ok(spec("token", SecretSource::Env("TOKEN".into())))
        );
        assert_eq!("id=token".parse(), Ok(spec("token", SecretSource::Implied)));
        // src= wins over env=; a repeated field's last value wins.
        assert_eq!("id=a,env=E,src=f,id=b".parse(), Ok(spec("b", file("f"))));
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let error = |text: &str| text.parse::<SecretSpec>().unwrap_err();
        assert_eq!(
            error("id=token,mode=0400"),
            r#"invalid secret "id=token,mode=0400": unknown field "mode=0400""#
        );
        assert_eq!(
            error("token"),
            r#"invalid secret "token": unknown field "token""#
        );
        assert_eq!(
            error("type=ssh,id=a"),
            r#"invalid secret "type=ssh,id=a": unknown field "type=ssh""#
        );
        assert_eq!(
            error("src=/f"),
            r#"invalid secret "src=/f": id=… is required"#
        );
        assert_eq!(
            error("id=,src=/f"),
            r#"invalid secret "id=,src=/f": id=… is required"#
        );
        assert_eq!(error(""), r#"invalid secret "": unknown field """#);
    }

    #[test]
    fn reading_names_the_secret_and_what_is_missing() {
        let path = std::env::temp_dir().join(format!("img-build-secret-{}", std::process::id()));
        std::fs::write(&path, "s3cret").unwrap();
        let given = spec("token", SecretSource::File(path.display().to_string()));
        assert_eq!(given.read().unwrap(), b"s3cret");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            given.read().unwrap_err(),
            format!(
                "secret token: {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        let unset = "IMG_BUILD_TEST_SECRET_THAT_IS_NEVER_SET";
        assert_eq!(
            spec("token", SecretSource::Env(unset.into()))
                .read()
                .unwrap_err(),
            format!("secret token: environment variable {unset} is not set")
        );
        assert_eq!(
            spec(unset, SecretSource::Implied).read().unwrap_err(),
            format!("secret {unset}: give src=FILE or env=VAR")
        );
    }
}
