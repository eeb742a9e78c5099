//! The playback signing keys of `reel serve` and `reel keys rotate-signing`.

use std::path::PathBuf;

use crate::config::Config;

/// The playback signing keys: a private JWK set, created on first start.
pub fn signing_keys_path(config: &Config) -> PathBuf {
    config.data_dir.join("signing-keys.json")
}

pub fn rotate_signing(config: &Config, remove: Option<&str>) -> anyhow::Result<()> {
    let path = signing_keys_path(config);
    let mut keys = reel_token::SigningKeySet::load_or_generate(&path)?;
    match remove {
        Some(kid) => {
            if !keys.remove(kid)? {
                anyhow::bail!("no signing key {kid:?} in {}", path.display());
            }
            eprintln!("removed signing key {kid}; tokens it signed no longer verify");
        }
        None => {
            let kid = keys.rotate();
            eprintln!("added signing key {kid}: it signs new tokens once the server restarts");
        }
    }
    keys.save(&path)?;
    println!("{}", keys.kids().join("\n"));
    Ok(())
}
