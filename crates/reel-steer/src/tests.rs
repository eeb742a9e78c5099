use super::*;

fn point(lat: f64, lon: f64) -> GeoPoint {
    GeoPoint::new(lat, lon).expect("valid point")
}

fn candidate(id: &str, location: Option<GeoPoint>, healthy: bool, load: f64) -> Candidate {
    Candidate {
        id: id.to_string(),
        location,
        healthy,
        load,
    }
}

#[test]
fn distances_match_known_city_pairs() {
    let paris = point(48.8566, 2.3522);
    let london = point(51.5074, -0.1278);
    let new_york = point(40.7128, -74.0060);
    assert!((paris.distance_km(&london) - 344.0).abs() < 5.0);
    assert!((paris.distance_km(&new_york) - 5837.0).abs() < 20.0);
    assert_eq!(paris.distance_km(&paris), 0.0);
    assert_eq!(GeoPoint::new(91.0, 0.0), None);
    assert_eq!(GeoPoint::new(f64::NAN, 0.0), None);
    assert_eq!(GeoPoint::parse("48.85, 2.35"), Some(point(48.85, 2.35)));
    assert_eq!(GeoPoint::parse("48.85"), None);
}

#[test]
fn nearest_healthy_first_then_load_and_dead_ones_dropped() {
    let paris = point(48.86, 2.35);
    let candidates = [
        candidate("us-east", Some(point(40.7, -74.0)), true, 1.0),
        candidate("eu-west", Some(point(48.9, 2.4)), true, 9.0),
        candidate("eu-west2", Some(point(48.8, 2.3)), true, 3.0),
        candidate("eu-dead", Some(point(48.86, 2.35)), false, 0.0),
        candidate("origin", None, true, 5.0),
    ];
    assert_eq!(
        order(Some(paris), &candidates),
        ["eu-west2", "eu-west", "us-east", "origin"]
    );
    // Without a client location only load counts.
    assert_eq!(
        order(None, &candidates),
        ["us-east", "eu-west2", "origin", "eu-west"]
    );
    let new_york = point(40.71, -74.0);
    assert_eq!(order(Some(new_york), &candidates)[0], "us-east");
}

const MASTER: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS

#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"

#EXT-X-STREAM-INF:BANDWIDTH=500000,AVERAGE-BANDWIDTH=400000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=30.000,AUDIO=\"audio\"
v360/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO=\"audio\"
v720/index.m3u8

#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,AVERAGE-BANDWIDTH=80000,CODECS=\"avc1.64001e\",RESOLUTION=640x360,URI=\"v360/iframes.m3u8\"
";

#[test]
fn hls_renames_the_subtitle_group_of_each_variant_with_its_renditions() {
    let master = "#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English\",URI=\"audio/index.m3u8\"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"text\",NAME=\"English\",URI=\"text-1/index.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=500000,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"audio\",SUBTITLES=\"text\"
v360/index.m3u8
";
    let steered = steer_hls(master, &pathways(), "/s", "edge-a").expect("steered");
    assert!(steered.contains("TYPE=SUBTITLES,GROUP-ID=\"text-edge-b\""));
    assert!(steered.contains(
        "AUDIO=\"audio-edge-b\",SUBTITLES=\"text-edge-b\",PATHWAY-ID=\"edge-b\"\nhttp://b.example/v/vid/v360/index.m3u8\n"
    ));
}

fn pathways() -> Vec<Pathway> {
    ["http://a.example:8081/v/vid/", "http://b.example/v/vid/"]
        .iter()
        .zip(["edge-a", "edge-b"])
        .map(|(base, id)| Pathway {
            id: id.to_string(),
            base: Url::parse(base).expect("url"),
        })
        .collect()
}

#[test]
fn hls_lists_every_variant_per_pathway_with_absolute_uris() {
    let steered =
        steer_hls(MASTER, &pathways(), "/v1/steering/vid?proto=hls", "edge-b").expect("steered");
    assert!(steered.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"));
    assert!(steered.contains(
        "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/v1/steering/vid?proto=hls\",PATHWAY-ID=\"edge-b\""
    ));
    assert_eq!(steered.matches("#EXT-X-STREAM-INF:").count(), 4);
    assert_eq!(steered.matches("PATHWAY-ID=\"edge-a\"").count(), 3);
    assert!(steered.contains("GROUP-ID=\"audio-edge-a\""));
    assert!(steered.contains("URI=\"http://a.example:8081/v/vid/audio/index.m3u8\""));
    assert!(steered.contains(
        "AUDIO=\"audio-edge-b\",PATHWAY-ID=\"edge-b\"\nhttp://b.example/v/vid/v720/index.m3u8\n"
    ));
    assert!(
        steered.contains("URI=\"http://b.example/v/vid/v360/iframes.m3u8\",PATHWAY-ID=\"edge-b\"")
    );
    // Steering twice, an empty pathway list and bad ids are refused.
    assert!(matches!(
        steer_hls(&steered, &pathways(), "/s", "edge-a"),
        Err(SteerError::Malformed(_))
    ));
    assert_eq!(
        steer_hls(MASTER, &[], "/s", "x"),
        Err(SteerError::NoPathways)
    );
    let mut bad = pathways();
    bad[0].id = "a\"b".to_string();
    assert!(matches!(
        steer_hls(MASTER, &bad, "/s", "x"),
        Err(SteerError::BadPathwayId(_))
    ));
    assert!(steer_hls("not a playlist", &pathways(), "/s", "x").is_err());
}

#[test]
fn dash_gets_content_steering_and_a_base_url_per_pathway() {
    let mpd = "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\">\n  <Period id=\"0\"></Period>\n</MPD>\n";
    let steered = steer_dash(
        mpd,
        &pathways(),
        "http://r/v1/steering/vid?proto=dash&x=1",
        "edge-a",
    )
    .expect("steered");
    let steering_at = steered.find("<ContentSteering").expect("steering");
    let period_at = steered.find("<Period").expect("period");
    assert!(steering_at < period_at);
    assert!(steered.contains("defaultServiceLocation=\"edge-a\" queryBeforeStart=\"true\">http://r/v1/steering/vid?proto=dash&amp;x=1</ContentSteering>"));
    assert!(
        steered.contains("<BaseURL serviceLocation=\"edge-b\">http://b.example/v/vid/</BaseURL>")
    );
    assert!(steer_dash(&steered, &pathways(), "/s", "edge-a").is_err());
}

#[test]
fn dash_with_a_text_track_is_steered() {
    let mpd = "<MPD type=\"static\">\n  <Period id=\"0\">\n    <AdaptationSet contentType=\"text\" mimeType=\"text/vtt\" lang=\"en\">\n      <Representation id=\"text-1\" bandwidth=\"113\">\n        <BaseURL>text-1/captions.vtt</BaseURL>\n      </Representation>\n    </AdaptationSet>\n  </Period>\n</MPD>\n";
    let steered = steer_dash(mpd, &pathways(), "/s", "edge-a").expect("steered");
    assert!(steered.contains("<BaseURL serviceLocation=\"edge-a\">"));
    assert!(steered.contains("<BaseURL>text-1/captions.vtt</BaseURL>"));
}

#[test]
fn steering_manifests_follow_each_standard() {
    let priority = vec!["edge-a".to_string(), "origin".to_string()];
    let hls = steering_manifest(Protocol::Hls, &priority, 10, "/v1/steering/v?proto=hls");
    assert_eq!(hls["VERSION"], 1);
    assert_eq!(hls["TTL"], 10);
    assert_eq!(hls["PATHWAY-PRIORITY"], json!(["edge-a", "origin"]));
    let dash = steering_manifest(Protocol::Dash, &priority, 10, "/r");
    assert_eq!(
        dash["SERVICE-LOCATION-PRIORITY"],
        json!(["edge-a", "origin"])
    );
    assert!(dash.get("PATHWAY-PRIORITY").is_none());
}

#[test]
fn network_rules_pick_the_longest_prefix() {
    let rules = NetworkRules::parse([
        "127.0.0.0/8=40.71,-74.0",
        "127.0.0.2/32=48.85,2.35",
        "::1/128=35.68,139.69",
    ])
    .expect("rules");
    let locate = |text: &str| rules.locate(text.parse().expect("ip"));
    assert_eq!(locate("127.0.0.2"), Some(point(48.85, 2.35)));
    assert_eq!(locate("127.0.0.1"), Some(point(40.71, -74.0)));
    assert_eq!(locate("::ffff:127.0.0.2"), Some(point(48.85, 2.35)));
    assert_eq!(locate("::1"), Some(point(35.68, 139.69)));
    assert_eq!(locate("10.0.0.1"), None);
    assert!(NetworkRules::parse(["10.0.0.0/8"]).is_err());
    assert!(NetworkRules::parse(["10.0.0.0/33=1,1"]).is_err());
}

/// A value in a MaxMind DB data section (only the types these tests need).
enum MmdbValue {
    Text(&'static str),
    Double(f64),
    Uint16(u16),
    Uint32(u32),
    Uint64(u64),
    Map(Vec<(&'static str, MmdbValue)>),
    Array(Vec<MmdbValue>),
}

/// MaxMind DB format 2.0, "Output Data Section": a control byte with the
/// type in its top 3 bits and a size below 29 in the low 5 bits; types
/// above 7 are "extended": type 0 in the control byte, then `type - 7`.
fn encode_mmdb_value(value: &MmdbValue, out: &mut Vec<u8>) {
    fn control(kind: u8, size: usize, out: &mut Vec<u8>) {
        assert!(size < 29, "small values only");
        if kind <= 7 {
            out.push(kind << 5 | size as u8);
        } else {
            out.push(size as u8);
            out.push(kind - 7);
        }
    }
    match value {
        MmdbValue::Text(text) => {
            control(2, text.len(), out);
            out.extend_from_slice(text.as_bytes());
        }
        MmdbValue::Double(number) => {
            control(3, 8, out);
            out.extend_from_slice(&number.to_be_bytes());
        }
        MmdbValue::Uint16(number) => {
            control(5, 2, out);
            out.extend_from_slice(&number.to_be_bytes());
        }
        MmdbValue::Uint32(number) => {
            control(6, 4, out);
            out.extend_from_slice(&number.to_be_bytes());
        }
        MmdbValue::Uint64(number) => {
            control(9, 8, out);
            out.extend_from_slice(&number.to_be_bytes());
        }
        MmdbValue::Map(entries) => {
            control(7, entries.len(), out);
            for (key, entry) in entries {
                encode_mmdb_value(&MmdbValue::Text(key), out);
                encode_mmdb_value(entry, out);
            }
        }
        MmdbValue::Array(items) => {
            control(11, items.len(), out);
            for item in items {
                encode_mmdb_value(item, out);
            }
        }
    }
}

/// A search-tree record: another node, nothing, or a data-section offset.
#[derive(Clone, Copy)]
enum TreeRecord {
    Node(usize),
    Empty,
    Data(usize),
}

/// A whole IPv4 MaxMind DB (24-bit records) mapping each non-overlapping
/// network to its record.
fn build_mmdb(networks: &[(&str, MmdbValue)]) -> Vec<u8> {
    let mut nodes: Vec<[TreeRecord; 2]> = vec![[TreeRecord::Empty; 2]];
    let mut data = Vec::new();
    for (network, record) in networks {
        let network: ipnet::Ipv4Net = network.parse().expect("IPv4 CIDR");
        let address = u32::from(network.network());
        let offset = data.len();
        encode_mmdb_value(record, &mut data);
        let mut node_idx = 0;
        for depth in 0..network.prefix_len() {
            let bit = ((address >> (31 - depth)) & 1) as usize;
            if depth + 1 == network.prefix_len() {
                nodes[node_idx][bit] = TreeRecord::Data(offset);
            } else {
                node_idx = match nodes[node_idx][bit] {
                    TreeRecord::Node(next) => next,
                    TreeRecord::Data(_) => panic!("overlapping networks are not supported"),
                    TreeRecord::Empty => {
                        nodes.push([TreeRecord::Empty; 2]);
                        let next = nodes.len() - 1;
                        nodes[node_idx][bit] = TreeRecord::Node(next);
                        next
                    }
                };
            }
        }
    }
    let node_count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for record in node {
            let value = match *record {
                TreeRecord::Node(next) => next,
                TreeRecord::Empty => node_count,
                // The 16 zero bytes between the tree and the data count.
                TreeRecord::Data(offset) => node_count + 16 + offset,
            };
            out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let metadata = MmdbValue::Map(vec![
        ("binary_format_major_version", MmdbValue::Uint16(2)),
        ("binary_format_minor_version", MmdbValue::Uint16(0)),
        ("build_epoch", MmdbValue::Uint64(0)),
        ("database_type", MmdbValue::Text("reel-test-City")),
        ("description", MmdbValue::Map(Vec::new())),
        ("ip_version", MmdbValue::Uint16(4)),
        ("languages", MmdbValue::Array(vec![MmdbValue::Text("en")])),
        ("node_count", MmdbValue::Uint32(node_count as u32)),
        ("record_size", MmdbValue::Uint16(24)),
    ]);
    encode_mmdb_value(&metadata, &mut out);
    out
}

fn city(lat: f64, lon: f64) -> MmdbValue {
    MmdbValue::Map(vec![(
        "location",
        MmdbValue::Map(vec![
            ("latitude", MmdbValue::Double(lat)),
            ("longitude", MmdbValue::Double(lon)),
        ]),
    )])
}

fn geoip() -> GeoIpDb {
    GeoIpDb::from_bytes(build_mmdb(&[
        ("127.0.0.0/8", city(48.85, 2.35)),
        ("10.1.0.0/16", city(40.71, -74.0)),
        (
            "10.9.0.0/16",
            MmdbValue::Map(vec![("country", MmdbValue::Text("FR"))]),
        ),
        (
            "10.10.0.0/16",
            MmdbValue::Map(vec![(
                "location",
                MmdbValue::Map(vec![("latitude", MmdbValue::Double(91.0))]),
            )]),
        ),
        (
            "10.11.0.0/16",
            MmdbValue::Map(vec![(
                "location",
                MmdbValue::Map(vec![
                    ("latitude", MmdbValue::Text("north")),
                    ("longitude", MmdbValue::Double(2.0)),
                ]),
            )]),
        ),
    ]))
    .expect("valid mmdb")
}

#[test]
fn geoip_db_reads_city_locations_and_knows_nothing_else() {
    let db = geoip();
    assert_eq!(db.database_type(), "reel-test-City");
    let locate = |text: &str| db.locate(text.parse().expect("ip"));
    assert_eq!(locate("127.0.0.1"), Some(point(48.85, 2.35)));
    assert_eq!(locate("::ffff:127.0.0.1"), Some(point(48.85, 2.35)));
    assert_eq!(locate("10.1.2.3"), Some(point(40.71, -74.0)));
    // Not in the database, a record without a location, a location
    // without a longitude, a latitude of the wrong type, and an IPv6
    // address in an IPv4-only database are all unknown.
    assert_eq!(locate("192.0.2.1"), None);
    assert_eq!(locate("10.9.0.1"), None);
    assert_eq!(locate("10.10.0.1"), None);
    assert_eq!(locate("10.11.0.1"), None);
    assert_eq!(locate("2001:db8::1"), None);
    assert!(GeoIpDb::from_bytes(b"not a database".to_vec()).is_err());
    assert!(GeoIpDb::from_bytes(Vec::new()).is_err());
}

#[test]
fn client_locator_asks_network_rules_before_the_geoip_db() {
    let locator = ClientLocator {
        networks: NetworkRules::parse(["127.0.0.2/32=35.68,139.69"]).expect("rules"),
        geoip: Some(geoip()),
    };
    let locate = |text: &str| locator.locate(text.parse().expect("ip"));
    assert_eq!(locate("127.0.0.2"), Some(point(35.68, 139.69)));
    assert_eq!(locate("127.0.0.1"), Some(point(48.85, 2.35)));
    assert_eq!(locate("192.0.2.1"), None);
    let rules_only = ClientLocator {
        networks: NetworkRules::default(),
        geoip: None,
    };
    assert_eq!(rules_only.locate("127.0.0.1".parse().expect("ip")), None);
}
