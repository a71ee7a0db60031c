//! The test vectors of the protocol notes (TV1–TV5) and WeChat Pay v2's reference example,
//! plus the wrong answers the classic bugs give, to prove the rules make a difference.

use super::*;

const TEST_KEY: &str = "9d101c97133837e13dde2d32a5054abb";

fn key(k: &str) -> SecretString {
    SecretString::from(k.to_owned())
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

fn md5_upper(text: &str) -> String {
    hex_upper(&Md5::digest(text.as_bytes()))
}

fn tv1() -> Fields {
    fields(&[
        ("service", "pay.weixin.jspay"),
        ("version", "2.0"),
        ("charset", "UTF-8"),
        ("sign_type", "MD5"),
        ("mch_id", "7551000001"),
        ("is_raw", "1"),
        ("is_minipg", "1"),
        ("out_trade_no", "ORD20240601000001"),
        ("body", "Test item"),
        ("sub_appid", "wx1234567890abcdef"),
        ("sub_openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("total_fee", "1"),
        ("mch_create_ip", "127.0.0.1"),
        ("notify_url", "https://example.com/wallyt/notify"),
        ("time_start", "20240601120000"),
        ("time_expire", "20240601121500"),
        ("attach", ""),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
    ])
}

#[test]
fn wechat_reference_vector() {
    let f = fields(&[
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("device_info", "1000"),
        ("body", "test"),
        ("nonce_str", "ibuaiVcKdpRxkhJA"),
    ]);
    assert_eq!(
        sign(&f, KeyedHash::Md5, &key("192006250b4c09247ec02edce69f6a2d")),
        "9A0A8659F005D6984697E2CA0A9CF3B7"
    );
}

#[test]
fn tv1_skips_the_empty_attach() {
    let f = tv1();
    assert_eq!(
        sign(&f, KeyedHash::Md5, &key(TEST_KEY)),
        "3C77631EB8BD81A46BEE5E57D856AE5E"
    );
    // Keeping `attach=` in the string is the bug the vector documents.
    let with_empty = format!("attach=&{}&key={TEST_KEY}", string_to_sign(&f));
    assert_eq!(md5_upper(&with_empty), "677FD21EB3F47F77EC24DB7E3A235967");
    assert_eq!(
        sign(&f, KeyedHash::Sha256, &key(TEST_KEY)),
        "AF10813A47DFE76C48B1F514742EA81F2AF4ED4FC8C472303934BBD8353A8AAB"
    );
}

#[test]
fn tv2_signs_raw_utf8_values() {
    let f = fields(&[
        ("service", "pay.weixin.jspay"),
        ("version", "2.0"),
        ("charset", "UTF-8"),
        ("sign_type", "MD5"),
        ("mch_id", "7551000001"),
        ("is_raw", "1"),
        ("out_trade_no", "ORD20240601000002"),
        ("body", "测试商品-小程序支付"),
        ("attach", "order=42&src=mini"),
        ("sub_appid", "wx1234567890abcdef"),
        ("sub_openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("total_fee", "8800"),
        ("mch_create_ip", "203.0.113.7"),
        ("notify_url", "https://example.com/wallyt/notify"),
        ("nonce_str", "a1b2c3d4e5f60718293a4b5c6d7e8f90"),
    ]);
    assert_eq!(
        sign(&f, KeyedHash::Md5, &key(TEST_KEY)),
        "23F73E8F556EF752B822F3A379CCCE5D"
    );
    // The same string as GBK bytes gives another digest (the vector's "wrong" value).
    let text = format!("{}&key={TEST_KEY}", string_to_sign(&f));
    let gbk = to_gbk(&text);
    assert_eq!(
        hex_upper(&Md5::digest(&gbk)),
        "950C87619B03FCDBFA93036A9D95BE18"
    );
}

/// GBK bytes of the few Chinese characters TV2 uses (ASCII passes through).
fn to_gbk(text: &str) -> Vec<u8> {
    let table: &[(char, [u8; 2])] = &[
        ('测', [0xB2, 0xE2]),
        ('试', [0xCA, 0xD4]),
        ('商', [0xC9, 0xCC]),
        ('品', [0xC6, 0xB7]),
        ('小', [0xD0, 0xA1]),
        ('程', [0xB3, 0xCC]),
        ('序', [0xD0, 0xF2]),
        ('支', [0xD6, 0xA7]),
        ('付', [0xB8, 0xB6]),
    ];
    let mut out = Vec::new();
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c as u8);
        } else {
            let (_, bytes) = table.iter().find(|(k, _)| *k == c).expect("char in table");
            out.extend_from_slice(bytes);
        }
    }
    out
}

/// The payment notify of TV3, unsigned (also the notify tests' fixture).
pub(crate) fn tv3() -> Fields {
    fields(&[
        ("version", "2.0"),
        ("charset", "UTF-8"),
        ("sign_type", "MD5"),
        ("status", "0"),
        ("result_code", "0"),
        ("mch_id", "7551000001"),
        ("nonce_str", "1717214700123"),
        ("openid", "oywgtuJBTzG1wlOfagWqP32XfmKo"),
        ("trade_type", "pay.weixin.jspay"),
        ("is_subscribe", "N"),
        ("pay_result", "0"),
        ("transaction_id", "7551000001202406011234567890"),
        ("out_transaction_id", "4200002233202406015555666677"),
        ("sub_is_subscribe", "N"),
        ("sub_appid", "wx1234567890abcdef"),
        ("sub_openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("out_trade_no", "ORD20240601000001"),
        ("total_fee", "1"),
        ("fee_type", "CNY"),
        ("attach", "order=42"),
        ("bank_type", "CFT"),
        ("time_end", "20240601120512"),
    ])
}

#[test]
fn tv3_payment_notify() {
    let f = tv3();
    assert_eq!(
        sign(&f, KeyedHash::Md5, &key(TEST_KEY)),
        "3C30648261E6624F1BF78069EA4D8A82"
    );
}

#[test]
fn tv4_refund_request() {
    let f = fields(&[
        ("service", "unified.trade.refund"),
        ("version", "2.0"),
        ("charset", "UTF-8"),
        ("sign_type", "MD5"),
        ("mch_id", "7551000001"),
        ("out_trade_no", "ORD20240601000001"),
        ("out_refund_no", "RF20240601000001"),
        ("total_fee", "1"),
        ("refund_fee", "1"),
        ("op_user_id", "7551000001"),
        ("nonce_str", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
    ]);
    assert_eq!(
        sign(&f, KeyedHash::Md5, &key(TEST_KEY)),
        "1E8DCEF749A755B0F29DDC108C8DF578"
    );
}

fn tv5() -> Fields {
    fields(&[
        ("appid", "wx1f87d44db95cba7a"),
        ("charset", "UTF-8"),
        ("mch_id", "7551000001"),
        ("nonce_str", "ad3d4b483b60430eb1244a1b8af8342d"),
        (
            "pay_info",
            r#"{"appId":"wx1f87d44db95cba7a","timeStamp":"1552016114182","status":"0","signType":"MD5","package":"prepay_id=wx081135141463112a346658964074872122","callback_url":null,"nonceStr":"1552016114182","paySign":"9A912AB1E8429926883D16172775A94C"}"#,
        ),
        ("result_code", "0"),
        ("sign_type", "MD5"),
        ("status", "0"),
        ("token_id", "112268ab98b7165d98ff9276379e8f808"),
        ("version", "2.0"),
    ])
}

#[test]
fn tv5_real_gateway_reply_verifies() {
    let mut f = tv5();
    assert_eq!(
        sign(&f, KeyedHash::Md5, &key(TEST_KEY)),
        "1CC60CC442230624F6D321BDA19AEFB5"
    );
    f.set("sign", "1CC60CC442230624F6D321BDA19AEFB5");
    assert!(verify(&f, KeyedHash::Md5, &key(TEST_KEY)));
    // The gateway has been seen sending lower case.
    f.set("sign", "1cc60cc442230624f6d321bda19aefb5");
    assert!(verify(&f, KeyedHash::Md5, &key(TEST_KEY)));
    // Without sign_type in the string it would not match.
    let mut without = tv5();
    without.remove("sign_type");
    assert_ne!(
        sign(&without, KeyedHash::Md5, &key(TEST_KEY)),
        "1CC60CC442230624F6D321BDA19AEFB5"
    );
}

#[test]
fn verification_fails_closed() {
    let mut f = tv5();
    assert!(
        !verify(&f, KeyedHash::Md5, &key(TEST_KEY)),
        "no sign at all"
    );
    f.set("sign", "1CC60CC442230624F6D321BDA19AEFB5");
    assert!(
        !verify(&f, KeyedHash::Md5, &key("another-key")),
        "wrong key"
    );
    f.set("token_id", "changed");
    assert!(
        !verify(&f, KeyedHash::Md5, &key(TEST_KEY)),
        "field changed after signing"
    );
    let mut f = tv5();
    f.set("sign", "1CC60CC442230624F6D321BDA19AEFB5");
    f.set("extra_field", "x");
    assert!(
        !verify(&f, KeyedHash::Md5, &key(TEST_KEY)),
        "an added field is signed too"
    );
}

#[test]
fn sort_is_bytewise_and_case_sensitive() {
    let f = fields(&[("b", "1"), ("B", "2"), ("a_b", "3"), ("aB", "4")]);
    assert_eq!(string_to_sign(&f), "B=2&aB=4&a_b=3&b=1");
}

#[test]
fn sign_types_parse_by_their_protocol_names() {
    for sign_type in [SignType::Md5, SignType::Sha256, SignType::Rsa256] {
        assert_eq!(SignType::parse(sign_type.as_str()), Ok(sign_type));
    }
    let err = SignType::parse("RSA").unwrap_err();
    assert!(err.to_string().contains("unsupported sign type"));
}
