//! `REEL_*` environment variables, derived from the [`Config`] struct: no key
//! is listed by hand.
//!
//! Every key of `reel.toml` (a leaf of the serialized configuration) is
//! settable as `REEL_` followed by its path in upper case with `.` written as
//! `_`: `server.listen` is `REEL_SERVER_LISTEN`, `data_dir` is
//! `REEL_DATA_DIR`. The older names keep working and yield to the canonical
//! one when both are set: the keys of `[limits]` without the section
//! (`REEL_MAX_UPLOAD_SIZE`), `REEL_LISTEN` and `REEL_WEB_DIR`.
//!
//! A value is read as the key's type: a number, `true`/`false`, a list as
//! `;`-separated strings (or a TOML inline array such as
//! `[{name = "a", url = "http://a"}]`), and anything else as the string the
//! file would hold (`30s`, `20GiB`, a path or URL).

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use super::Config;

/// Every key of the configuration as its dotted path (the README test
/// compares its table with this).
#[cfg(test)]
pub fn keys() -> Vec<String> {
    let tree = serde_json::to_value(Config::default()).expect("the config serializes");
    leaves(&tree)
        .into_iter()
        .map(|path| path.join("."))
        .collect()
}

/// The variable names of the key at `path` (dotted): the canonical one
/// first, then the older ones still read.
pub fn names(path: &str) -> Vec<String> {
    let canonical = format!("REEL_{}", path.replace('.', "_").to_uppercase());
    let older = match path.split_once('.') {
        Some(("limits", key)) => Some(key),
        Some(("server", key @ ("listen" | "web_dir" | "edge_secret"))) => Some(key),
        _ => None,
    };
    let mut names = vec![canonical];
    names.extend(older.map(|key| format!("REEL_{}", key.to_uppercase())));
    names
}

/// `config` with every key a variable names replaced by its value.
pub(super) fn apply(
    config: &Config,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Config> {
    let mut tree = serde_json::to_value(config).context("serializing the configuration")?;
    for path in leaves(&tree) {
        let dotted = path.join(".");
        // Older names first, so that the canonical one wins.
        for name in names(&dotted).into_iter().rev() {
            let Some(text) = var(&name) else { continue };
            let value = parse(leaf_mut(&mut tree, &path), &text)
                .and_then(|value| {
                    let mut candidate = tree.clone();
                    *leaf_mut(&mut candidate, &path) = value.clone();
                    Config::deserialize(&candidate).map_err(anyhow::Error::from)?;
                    Ok(value)
                })
                .with_context(|| {
                    format!("environment variable {name}={text:?} is invalid for {dotted}")
                })?;
            *leaf_mut(&mut tree, &path) = value;
        }
    }
    Config::deserialize(tree).context("the configuration after the environment is invalid")
}

/// The paths of the leaves (everything but tables) of `tree`.
fn leaves(tree: &Value) -> Vec<Vec<String>> {
    fn walk(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    path.push(key.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => out.push(path.clone()),
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

fn leaf_mut<'a>(tree: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(tree, |node, key| &mut node[key.as_str()])
}

/// `text` as a value of the kind `current` is.
fn parse(current: &Value, text: &str) -> anyhow::Result<Value> {
    Ok(match current {
        Value::Bool(_) => Value::Bool(
            text.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("expected true or false"))?,
        ),
        Value::Number(_) => {
            let text = text.trim();
            if let Ok(number) = text.parse::<u64>() {
                Value::from(number)
            } else if let Ok(number) = text.parse::<i64>() {
                Value::from(number)
            } else {
                let number: f64 = text
                    .parse()
                    .map_err(|_| anyhow::anyhow!("expected a number"))?;
                Value::from(number)
            }
        }
        Value::Array(_) if text.trim_start().starts_with('[') => {
            let table: toml::Table = toml::from_str(&format!("value = {text}"))
                .context("expected a TOML inline array")?;
            serde_json::to_value(&table["value"])?
        }
        Value::Array(_) => Value::Array(
            text.split(';')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        ),
        Value::String(_) | Value::Null | Value::Object(_) => Value::String(text.to_string()),
    })
}
