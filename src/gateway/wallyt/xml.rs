//! The wire format (protocol §1): a root `<xml>` with one flat child element per field.
//!
//! Out: every value in CDATA (a `]]>` inside a value is split across two CDATA sections).
//! In: CDATA and escaped text both accepted; anything that is not the flat shape is refused —
//! DOCTYPE (and with it every custom entity: no billion laughs), nesting, attributes,
//! duplicate names (which field would the signature mean?), non-UTF-8, over 64 KiB.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::fields::Fields;

/// Largest body accepted, in bytes.
pub const MAX_XML_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("body is larger than {MAX_XML_BYTES} bytes")]
    TooLarge,
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("DOCTYPE and entity declarations are not accepted")]
    Doctype,
    #[error("root element must be <xml>")]
    BadRoot,
    #[error("fields must be flat elements without attributes")]
    NotFlat,
    #[error("field {0:?} appears twice")]
    Duplicate(String),
    #[error("field name {0:?} is not a protocol name")]
    BadName(String),
    #[error("malformed XML: {0}")]
    Malformed(String),
}

pub fn encode(fields: &Fields) -> String {
    let mut out = String::with_capacity(64 + fields.len() * 48);
    out.push_str("<xml>");
    for (name, value) in fields.iter() {
        out.push('<');
        out.push_str(name);
        out.push_str("><![CDATA[");
        out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
        out.push_str("]]></");
        out.push_str(name);
        out.push('>');
    }
    out.push_str("</xml>");
    out
}

pub fn decode(body: &[u8]) -> Result<Fields, XmlError> {
    if body.len() > MAX_XML_BYTES {
        return Err(XmlError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let mut fields = Fields::new();
    // Where we are: before the root, inside it, inside one field, after the root.
    let mut in_root = false;
    let mut finished = false;
    let mut current: Option<(String, String)> = None;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::Eof => break,
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(decl) => {
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| XmlError::Malformed(e.to_string()))?;
                    if !encoding.eq_ignore_ascii_case(b"utf-8") {
                        return Err(XmlError::NotUtf8);
                    }
                }
            }
            Event::PI(_) => return Err(XmlError::Malformed("processing instruction".into())),
            Event::Comment(_) => {}
            Event::Start(start) => {
                if start.attributes().next().is_some() {
                    return Err(XmlError::NotFlat);
                }
                let name = element_name(start.name().as_ref())?;
                if finished || current.is_some() {
                    return Err(XmlError::NotFlat);
                }
                if !in_root {
                    if name != "xml" {
                        return Err(XmlError::BadRoot);
                    }
                    in_root = true;
                } else {
                    current = Some((name, String::new()));
                }
            }
            Event::Empty(empty) => {
                if empty.attributes().next().is_some() {
                    return Err(XmlError::NotFlat);
                }
                let name = element_name(empty.name().as_ref())?;
                if !in_root || current.is_some() {
                    return Err(if in_root {
                        XmlError::NotFlat
                    } else {
                        XmlError::BadRoot
                    });
                }
                insert(&mut fields, name, String::new())?;
            }
            Event::End(_) => match current.take() {
                Some((name, value)) => insert(&mut fields, name, value)?,
                None if in_root => {
                    in_root = false;
                    finished = true;
                }
                None => return Err(XmlError::Malformed("unexpected end tag".into())),
            },
            Event::Text(text) => {
                let value = text
                    .unescape()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                match current.as_mut() {
                    Some((_, buf)) => buf.push_str(&value),
                    None if value.trim().is_empty() => {}
                    None => return Err(XmlError::NotFlat),
                }
            }
            Event::CData(cdata) => {
                let raw = std::str::from_utf8(&cdata).map_err(|_| XmlError::NotUtf8)?;
                match current.as_mut() {
                    Some((_, buf)) => buf.push_str(raw),
                    None => return Err(XmlError::NotFlat),
                }
            }
        }
    }
    if in_root {
        return Err(XmlError::Malformed("unclosed root element".into()));
    }
    if !finished {
        return Err(XmlError::BadRoot);
    }
    Ok(fields)
}

fn element_name(raw: &[u8]) -> Result<String, XmlError> {
    let name = std::str::from_utf8(raw).map_err(|_| XmlError::NotUtf8)?;
    let valid = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(XmlError::BadName(name.chars().take(64).collect()))
    }
}

fn insert(fields: &mut Fields, name: String, value: String) -> Result<(), XmlError> {
    if fields.insert_raw(name.clone(), value).is_some() {
        return Err(XmlError::Duplicate(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decoded(text: &str) -> Result<Fields, XmlError> {
        decode(text.as_bytes())
    }

    #[test]
    fn reads_cdata_escaped_text_declarations_and_empty_fields() {
        let f = decoded(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <a><![CDATA[x<y & z]]></a>\n  \
             <b>1 &lt; 2 &amp; 3</b><c/><d></d><!-- note --></xml>\n",
        )
        .unwrap();
        assert_eq!(f.get("a"), Some("x<y & z"));
        assert_eq!(f.get("b"), Some("1 < 2 & 3"));
        assert!(f.iter().any(|(k, v)| k == "c" && v.is_empty()));
        assert!(f.iter().any(|(k, v)| k == "d" && v.is_empty()));
    }

    #[test]
    fn writes_sorted_cdata_and_splits_the_terminator() {
        let f: Fields = [("b", "2"), ("a", "x]]>y")].into_iter().collect();
        let xml = encode(&f);
        assert_eq!(
            xml,
            "<xml><a><![CDATA[x]]]]><![CDATA[>y]]></a><b><![CDATA[2]]></b></xml>"
        );
        assert_eq!(decoded(&xml).unwrap(), f);
    }

    #[test]
    fn refuses_what_is_not_the_flat_shape() {
        let cases: &[(&str, XmlError)] = &[
            (
                "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><xml><a>&a;</a></xml>",
                XmlError::Doctype,
            ),
            ("<root><a>1</a></root>", XmlError::BadRoot),
            ("<xml><a><b>1</b></a></xml>", XmlError::NotFlat),
            ("<xml><a x=\"1\">1</a></xml>", XmlError::NotFlat),
            (
                "<xml><a>1</a><a>2</a></xml>",
                XmlError::Duplicate("a".into()),
            ),
            ("<xml>loose text<a>1</a></xml>", XmlError::NotFlat),
            ("<xml><a>1</a></xml><xml></xml>", XmlError::NotFlat),
            ("<xml><a-b>1</a-b></xml>", XmlError::BadName("a-b".into())),
            ("", XmlError::BadRoot),
            (
                "<?xml version=\"1.0\" encoding=\"GBK\"?><xml></xml>",
                XmlError::NotUtf8,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(&decoded(text).unwrap_err(), expected, "{text}");
        }
        assert!(matches!(
            decoded("<xml><a>1</b></xml>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            decoded("<xml><a>&bogus;</a></xml>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(matches!(
            decoded("<xml><a>1</a>"),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(
            decode(&[0x3c, 0x78, 0xff, 0xfe]).unwrap_err(),
            XmlError::NotUtf8
        );
        let big = format!("<xml><a>{}</a></xml>", "x".repeat(MAX_XML_BYTES));
        assert_eq!(decoded(&big).unwrap_err(), XmlError::TooLarge);
    }

    fn field_name() -> impl Strategy<Value = String> {
        "[A-Za-z_][A-Za-z0-9_]{0,20}"
    }

    proptest! {
        #[test]
        fn any_printable_fields_survive_a_round_trip(
            map in proptest::collection::btree_map(field_name(), "[^\\p{C}]{1,40}", 0..12)
        ) {
            let fields: Fields = map.into_iter().collect();
            let xml = encode(&fields);
            prop_assert_eq!(decode(xml.as_bytes()).unwrap(), fields);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mutated_documents_never_panic(
            cut in 0usize..200, insert in "[<>&;!\\[\\]/a-z]{0,8}"
        ) {
            let mut text = encode(&[("a", "1"), ("b", "x]]>y")].into_iter().collect());
            let at = cut.min(text.len());
            text.insert_str(at, &insert);
            let _ = decode(text.as_bytes());
        }
    }
}
