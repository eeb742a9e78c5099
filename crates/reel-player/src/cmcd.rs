//! CMCD (CTA-5004) keys sent in each segment request's query.

/// The CMCD query value of a segment request.
pub(crate) struct Cmcd<'a> {
    pub(crate) bitrate_kbps: u64,
    pub(crate) buffer_ms: f64,
    pub(crate) duration_ms: f64,
    pub(crate) measured_kbps: Option<f64>,
    pub(crate) next: Option<&'a str>,
    pub(crate) session: &'a str,
    pub(crate) content: &'a str,
    pub(crate) startup: bool,
    /// `sf`: `h` (HLS) or `d` (DASH).
    pub(crate) format: char,
}

impl Cmcd<'_> {
    /// The keys, sorted, with `bl` and `mtp` rounded to 100.
    pub(crate) fn value(&self) -> String {
        let mut keys = vec![
            format!("bl={}", (self.buffer_ms / 100.0).round() as u64 * 100),
            format!("br={}", self.bitrate_kbps),
            format!("cid=\"{}\"", self.content),
            format!("d={}", self.duration_ms.round() as u64),
        ];
        if let Some(measured) = self.measured_kbps {
            keys.push(format!("mtp={}", (measured / 100.0).round() as u64 * 100));
        }
        if let Some(next) = self.next {
            keys.push(format!("nor=\"{next}\""));
        }
        keys.push("ot=v".to_string());
        keys.push(format!("sf={}", self.format));
        keys.push(format!("sid=\"{}\"", self.session));
        if self.startup {
            keys.push("su".to_string());
        }
        keys.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmcd_keys_are_sorted_and_rounded() {
        let value = Cmcd {
            bitrate_kbps: 730,
            buffer_ms: 12_345.0,
            duration_ms: 4000.0,
            measured_kbps: Some(2_468.0),
            next: Some("seg-00003.m4s"),
            session: "s",
            content: "c",
            startup: true,
            format: 'h',
        }
        .value();
        assert_eq!(
            value,
            "bl=12300,br=730,cid=\"c\",d=4000,mtp=2500,nor=\"seg-00003.m4s\",ot=v,sf=h,sid=\"s\",su"
        );
    }
}
