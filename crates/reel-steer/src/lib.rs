//! Content steering (Apple's HLS Content Steering 1.2b1 and DASH-IF's
//! CTS-001) as pure functions: no IO and no clock.
//!
//! - [`order`] ranks the pathways (edges, then the origin) for one client:
//!   healthy ones only, nearest first, then least loaded.
//! - [`steer_hls`] and [`steer_dash`] turn a stored multivariant playlist or
//!   MPD (relative URIs) into one that lists every pathway with absolute
//!   URIs, `EXT-X-CONTENT-STEERING` / `<ContentSteering>` and the initial
//!   pathway.
//! - [`steering_manifest`] is the JSON the steering server answers.
//! - [`NetworkRules`] maps client addresses to locations by operator rules,
//!   [`GeoIpDb`] by a MaxMind DB (`.mmdb`) held in memory, and
//!   [`ClientLocator`] asks the rules first, then the database.
#![deny(missing_docs)]

use std::fmt::Write;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde_json::{json, Value};
use url::Url;

/// A point on Earth, in degrees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoPoint {
    lat: f64,
    lon: f64,
}

impl GeoPoint {
    /// `None` outside -90..90 / -180..180 or for NaN.
    pub fn new(lat: f64, lon: f64) -> Option<GeoPoint> {
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            .then_some(GeoPoint { lat, lon })
    }

    /// Parses `LAT,LON`.
    pub fn parse(text: &str) -> Option<GeoPoint> {
        let (lat, lon) = text.split_once(',')?;
        GeoPoint::new(lat.trim().parse().ok()?, lon.trim().parse().ok()?)
    }

    /// Latitude in degrees.
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub fn lon(&self) -> f64 {
        self.lon
    }

    /// Great-circle distance in km (haversine, mean Earth radius).
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0;
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.lon - self.lon).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

/// What the router knows about one pathway when it ranks them.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The pathway id (the edge's name).
    pub id: String,
    /// Where it is, if known.
    pub location: Option<GeoPoint>,
    /// Whether its health checks pass.
    pub healthy: bool,
    /// Relative load, lower is better (e.g. health-check round trip in ms).
    pub load: f64,
}

/// Distances within this many km count as equally near, so load decides.
pub const SAME_DISTANCE_KM: f64 = 250.0;

/// The pathway ids for a client at `client`, best first: unhealthy ones are
/// left out; nearer ones come first (in bands of [`SAME_DISTANCE_KM`]),
/// then less loaded, then by id. Pathways without a location, or every
/// pathway when the client's location is unknown, rank by load alone
/// after those with a known distance.
pub fn order(client: Option<GeoPoint>, candidates: &[Candidate]) -> Vec<String> {
    let mut ranked: Vec<(u64, f64, &str)> = candidates
        .iter()
        .filter(|candidate| candidate.healthy)
        .map(|candidate| {
            let band = match (client, candidate.location) {
                (Some(client), Some(location)) => {
                    (client.distance_km(&location) / SAME_DISTANCE_KM) as u64
                }
                _ => u64::MAX,
            };
            let load = if candidate.load.is_finite() {
                candidate.load
            } else {
                f64::MAX
            };
            (band, load, candidate.id.as_str())
        })
        .collect();
    ranked.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then_with(|| a.2.cmp(b.2))
    });
    ranked
        .into_iter()
        .map(|(_, _, id)| id.to_string())
        .collect()
}

/// A pathway in a steered manifest: its id and where its copy of the video
/// lives (e.g. `http://edge-eu:8081/v/{video}/`, ending in `/`).
#[derive(Clone, Debug)]
pub struct Pathway {
    /// The pathway id.
    pub id: String,
    /// The base URL the stored manifest's relative URIs resolve against.
    pub base: Url,
}

/// Why a manifest could not be steered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SteerError {
    /// No pathway to list.
    #[error("no pathway to steer to")]
    NoPathways,
    /// A pathway id HLS or DASH cannot carry.
    #[error("pathway id {0:?} must be 1 to 64 of A-Z a-z 0-9 . _ -")]
    BadPathwayId(String),
    /// The stored manifest is not what reel writes.
    #[error("the stored manifest cannot be steered: {0}")]
    Malformed(String),
}

fn check_pathways(pathways: &[Pathway]) -> Result<(), SteerError> {
    if pathways.is_empty() {
        return Err(SteerError::NoPathways);
    }
    for pathway in pathways {
        let valid = (1..=64).contains(&pathway.id.len())
            && pathway
                .id
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
        if !valid {
            return Err(SteerError::BadPathwayId(pathway.id.clone()));
        }
    }
    Ok(())
}

fn absolute(base: &Url, relative: &str) -> Result<String, SteerError> {
    base.join(relative)
        .map(String::from)
        .map_err(|error| SteerError::Malformed(format!("URI {relative:?}: {error}")))
}

/// Rewrites `URI="…"` inside an attribute list.
fn replace_uri(line: &str, base: &Url) -> Result<String, SteerError> {
    let Some(start) = line.find("URI=\"") else {
        return Ok(line.to_string());
    };
    let value_start = start + 5;
    let value_end = value_start
        + line[value_start..]
            .find('"')
            .ok_or_else(|| SteerError::Malformed(format!("unterminated URI in {line:?}")))?;
    Ok(format!(
        "{}{}{}",
        &line[..value_start],
        absolute(base, &line[value_start..value_end])?,
        &line[value_end..]
    ))
}

/// Renames the `GROUP-ID="g"` / `AUDIO="g"` / `SUBTITLES="g"` value `g` to `g-{pathway}`, so
/// each pathway's variants use that pathway's renditions.
fn rename_group(line: &str, attribute: &str, pathway: &str) -> String {
    let needle = format!("{attribute}=\"");
    match line.find(&needle) {
        Some(start) => {
            let value_start = start + needle.len();
            match line[value_start..].find('"') {
                Some(length) => format!(
                    "{}-{pathway}{}",
                    &line[..value_start + length],
                    &line[value_start + length..]
                ),
                None => line.to_string(),
            }
        }
        None => line.to_string(),
    }
}

/// The steered multivariant playlist: every variant, rendition and I-frame
/// playlist once per pathway (in the given order), with `PATHWAY-ID`,
/// absolute URIs and per-pathway rendition groups, plus
/// `EXT-X-CONTENT-STEERING` naming `server_uri` and `initial`.
pub fn steer_hls(
    master: &str,
    pathways: &[Pathway],
    server_uri: &str,
    initial: &str,
) -> Result<String, SteerError> {
    check_pathways(pathways)?;
    let mut lines = master.lines();
    if lines.next().map(str::trim) != Some("#EXTM3U") {
        return Err(SteerError::Malformed("no #EXTM3U header".to_string()));
    }
    let mut header = Vec::new();
    let mut media = Vec::new();
    let mut variants: Vec<(String, String)> = Vec::new();
    let mut iframes = Vec::new();
    let mut pending: Option<String> = None;
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(stream_inf) = pending.take() {
            if line.starts_with('#') {
                return Err(SteerError::Malformed(
                    "EXT-X-STREAM-INF without a URI".to_string(),
                ));
            }
            variants.push((stream_inf, line.to_string()));
        } else if line.starts_with("#EXT-X-STREAM-INF:") {
            pending = Some(line.to_string());
        } else if line.starts_with("#EXT-X-MEDIA:") {
            media.push(line.to_string());
        } else if line.starts_with("#EXT-X-I-FRAME-STREAM-INF:") {
            iframes.push(line.to_string());
        } else if line.starts_with("#EXT-X-CONTENT-STEERING") || line.contains("PATHWAY-ID") {
            return Err(SteerError::Malformed("already steered".to_string()));
        } else {
            header.push(line.to_string());
        }
    }
    if pending.is_some() || variants.is_empty() {
        return Err(SteerError::Malformed("no complete variant".to_string()));
    }
    let mut out = String::from("#EXTM3U\n");
    for line in &header {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "#EXT-X-CONTENT-STEERING:SERVER-URI=\"{server_uri}\",PATHWAY-ID=\"{initial}\""
    );
    for pathway in pathways {
        out.push('\n');
        for line in &media {
            let renamed = rename_group(line, "GROUP-ID", &pathway.id);
            let _ = writeln!(out, "{}", replace_uri(&renamed, &pathway.base)?);
        }
        for (stream_inf, uri) in &variants {
            // Both groups a variant names are renamed as their renditions
            // were (RFC 8216 4.4.6.2: AUDIO and SUBTITLES must match a
            // GROUP-ID), else players find no subtitles for the variant.
            let renamed = rename_group(
                &rename_group(stream_inf, "AUDIO", &pathway.id),
                "SUBTITLES",
                &pathway.id,
            );
            let _ = writeln!(
                out,
                "{renamed},PATHWAY-ID=\"{}\"\n{}",
                pathway.id,
                absolute(&pathway.base, uri)?
            );
        }
        for line in &iframes {
            let _ = writeln!(
                out,
                "{},PATHWAY-ID=\"{}\"",
                replace_uri(line, &pathway.base)?,
                pathway.id
            );
        }
    }
    Ok(out)
}

/// The steered MPD: `<ContentSteering>` naming `server_uri` and `initial`,
/// and one `<BaseURL serviceLocation>` per pathway at MPD level (the
/// stored MPD's segment templates are relative, so they resolve against
/// whichever BaseURL the player picks).
pub fn steer_dash(
    mpd: &str,
    pathways: &[Pathway],
    server_uri: &str,
    initial: &str,
) -> Result<String, SteerError> {
    check_pathways(pathways)?;
    // A text track's Representation has a relative `<BaseURL>` of its own
    // (it resolves against the pathway's): only pathway BaseURLs mean the
    // MPD was steered already.
    if mpd.contains("<ContentSteering") || mpd.contains("<BaseURL serviceLocation=") {
        return Err(SteerError::Malformed("already steered".to_string()));
    }
    let start = mpd
        .find("<MPD")
        .ok_or_else(|| SteerError::Malformed("no <MPD> element".to_string()))?;
    let end = start
        + mpd[start..]
            .find('>')
            .ok_or_else(|| SteerError::Malformed("unterminated <MPD>".to_string()))?
        + 1;
    let mut inserted = format!(
        "\n  <ContentSteering defaultServiceLocation=\"{initial}\" queryBeforeStart=\"true\">{}</ContentSteering>",
        xml_escape(server_uri)
    );
    for pathway in pathways {
        let _ = write!(
            inserted,
            "\n  <BaseURL serviceLocation=\"{}\">{}</BaseURL>",
            pathway.id,
            xml_escape(pathway.base.as_str())
        );
    }
    Ok(format!("{}{inserted}{}", &mpd[..end], &mpd[end..]))
}

fn xml_escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// Which standard a steering manifest answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HLS: `PATHWAY-PRIORITY`.
    Hls,
    /// DASH: `SERVICE-LOCATION-PRIORITY`.
    Dash,
}

/// The steering manifest: version 1, the TTL in seconds, where to reload it,
/// and the pathway priority.
pub fn steering_manifest(
    protocol: Protocol,
    priority: &[String],
    ttl_seconds: u64,
    reload_uri: &str,
) -> Value {
    let key = match protocol {
        Protocol::Hls => "PATHWAY-PRIORITY",
        Protocol::Dash => "SERVICE-LOCATION-PRIORITY",
    };
    json!({
        "VERSION": 1,
        "TTL": ttl_seconds,
        "RELOAD-URI": reload_uri,
        key: priority,
    })
}

/// Client locations by network: the longest matching prefix wins.
#[derive(Clone, Debug, Default)]
pub struct NetworkRules {
    rules: Vec<(IpNet, GeoPoint)>,
}

/// A rule that could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("network rule {0:?}: write CIDR=LAT,LON, e.g. 10.1.0.0/16=48.85,2.35")]
pub struct BadRule(pub String);

impl NetworkRules {
    /// Rules from `CIDR=LAT,LON` strings.
    pub fn parse<'a>(rules: impl IntoIterator<Item = &'a str>) -> Result<NetworkRules, BadRule> {
        let mut parsed = Vec::new();
        for rule in rules {
            let bad = || BadRule(rule.to_string());
            let (network, location) = rule.split_once('=').ok_or_else(bad)?;
            let network: IpNet = network.trim().parse().map_err(|_| bad())?;
            let location = GeoPoint::parse(location).ok_or_else(bad)?;
            parsed.push((network, location));
        }
        parsed.sort_by_key(|(network, _)| std::cmp::Reverse(network.prefix_len()));
        Ok(NetworkRules { rules: parsed })
    }

    /// The location of `address`, if a rule covers it.
    pub fn locate(&self, address: IpAddr) -> Option<GeoPoint> {
        let address = unmap_ipv4(address);
        self.rules
            .iter()
            .find(|(network, _)| network.contains(&address))
            .map(|(_, location)| *location)
    }

    /// No rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// An IPv4 client on a dual-stack socket shows up as `::ffff:a.b.c.d`;
/// rules and databases know it by its IPv4 address.
fn unmap_ipv4(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// A GeoIP database in MaxMind's `.mmdb` format (the GeoLite2-City /
/// GeoIP2-City layout: `location.latitude`, `location.longitude`), held in
/// memory and shared by clones.
#[derive(Clone)]
pub struct GeoIpDb {
    reader: Arc<maxminddb::Reader<Vec<u8>>>,
}

/// Bytes that are not a MaxMind DB.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a MaxMind DB (.mmdb) file: {0}")]
pub struct BadGeoIpDb(String);

impl GeoIpDb {
    /// Parses a whole `.mmdb` file's bytes (the caller reads the file).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GeoIpDb, BadGeoIpDb> {
        let reader =
            maxminddb::Reader::from_source(bytes).map_err(|error| BadGeoIpDb(error.to_string()))?;
        Ok(GeoIpDb {
            reader: Arc::new(reader),
        })
    }

    /// The database's own name for its layout, e.g. `GeoLite2-City`.
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// The location of `address`; `None` when the database has no record
    /// for it, the record has no usable `location`, or the lookup fails
    /// (an IPv6 address in an IPv4-only database, a corrupt record).
    pub fn locate(&self, address: IpAddr) -> Option<GeoPoint> {
        let result = self.reader.lookup(unmap_ipv4(address)).ok()?;
        let latitude: f64 = result
            .decode_path(&maxminddb::path!["location", "latitude"])
            .ok()??;
        let longitude: f64 = result
            .decode_path(&maxminddb::path!["location", "longitude"])
            .ok()??;
        GeoPoint::new(latitude, longitude)
    }
}

impl std::fmt::Debug for GeoIpDb {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let metadata = self.reader.metadata();
        formatter
            .debug_struct("GeoIpDb")
            .field("database_type", &metadata.database_type)
            .field("ip_version", &metadata.ip_version)
            .field("node_count", &metadata.node_count)
            .finish()
    }
}

/// Where a client is: the operator's [`NetworkRules`] first (they override
/// the database), then the [`GeoIpDb`] if there is one, else unknown.
#[derive(Clone, Debug)]
pub struct ClientLocator {
    /// Operator rules, checked first.
    pub networks: NetworkRules,
    /// The GeoIP database, checked when no rule covers the address.
    pub geoip: Option<GeoIpDb>,
}

impl ClientLocator {
    /// The location of `address`, if a rule or the database knows it.
    pub fn locate(&self, address: IpAddr) -> Option<GeoPoint> {
        self.networks
            .locate(address)
            .or_else(|| self.geoip.as_ref()?.locate(address))
    }
}

#[cfg(test)]
mod tests;
