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
