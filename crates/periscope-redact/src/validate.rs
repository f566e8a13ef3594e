//! Checksums and structural rules that turn a candidate into a finding.
//!
//! Detectors only look for shapes; these validators are what keeps order ids,
//! hashes, timestamps and amounts from being masked. They are public so that other
//! crates (and the benchmark's naive baseline) apply exactly the same rules.
//!
//! Every function takes ASCII bytes and never panics on any input.

use sha2::{Digest, Sha256};

/// Luhn (mod 10) check over ASCII digits; false on any non-digit or on empty input.
///
/// Card numbers carry it, so a random 16-digit id passes only one time in ten.
pub fn luhn_valid(digits: &[u8]) -> bool {
    // Every second digit from the right is doubled, 10-18 counting as 1-9.
    const DOUBLED: [u32; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];
    if digits.is_empty() {
        return false;
    }
    let mut sum = 0u32;
    let mut double = false;
    for &b in digits.iter().rev() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return false;
        }
        sum += if double {
            DOUBLED[usize::from(d)]
        } else {
            u32::from(d)
        };
        double = !double;
    }
    sum.is_multiple_of(10)
}

/// Whether the leading digits (IIN) and the length match a known card scheme.
///
/// Schemes: Visa, Mastercard, American Express, Discover, Diners, JCB, UnionPay,
/// Maestro, Mir and RuPay. The rule keeps 13-digit epoch milliseconds (which
/// start with `1`) and most ids out before the Luhn check even runs.
pub fn card_iin_valid(digits: &[u8]) -> bool {
    let n = digits.len();
    if !(12..=19).contains(&n) || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let prefix = |len: usize| -> u32 {
        digits[..len]
            .iter()
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'))
    };
    let p1 = prefix(1);
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    let p6 = prefix(6);
    let visa = p1 == 4 && matches!(n, 13 | 16 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16;
    let amex = matches!(p2, 34 | 37) && n == 15;
    let discover =
        (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6))
            && (16..=19).contains(&n);
    let diners = ((300..=305).contains(&p3) || p4 == 3095 || matches!(p2, 36 | 38 | 39))
        && (14..=19).contains(&n);
    let jcb = (3528..=3589).contains(&p4) && (16..=19).contains(&n);
    let unionpay = p2 == 62 && (16..=19).contains(&n);
    let maestro = (p2 == 50 || (56..=58).contains(&p2) || matches!(p4, 6304 | 6759 | 6761..=6763))
        && (12..=19).contains(&n);
    let mir = (2200..=2204).contains(&p4) && n == 16;
    let rupay = matches!(p2, 60 | 81 | 82) && n == 16;
    visa || mastercard || amex || discover || diners || jcb || unionpay || maestro || mir || rupay
}

/// Whether a run of digits reads as epoch milliseconds between 2001 and 2033.
///
/// Such timestamps are everywhere in logs and are 13 digits long like some Visa
/// numbers; the rule is stated explicitly so it holds whatever the IIN table says.
pub fn is_epoch_millis(digits: &[u8]) -> bool {
    digits.len() == 13 && digits[0] == b'1' && digits.iter().all(u8::is_ascii_digit)
}

/// A full card check: not a timestamp, known scheme and length, Luhn-valid.
pub fn card_valid(digits: &[u8]) -> bool {
    !is_epoch_millis(digits) && card_iin_valid(digits) && luhn_valid(digits)
}

/// IBAN length per ISO country code (SWIFT IBAN registry), sorted by code.
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// [`IBAN_LENGTHS`] indexed by the two letters (`AA` = 0, `AB` = 1...): one
/// lookup instead of a search. 0 for countries without IBANs.
static IBAN_LENGTH_BY_CODE: [u8; 26 * 26] = {
    let mut table = [0u8; 26 * 26];
    let mut i = 0;
    while i < IBAN_LENGTHS.len() {
        let (cc, len) = IBAN_LENGTHS[i];
        table[(cc[0] - b'A') as usize * 26 + (cc[1] - b'A') as usize] = len as u8;
        i += 1;
    }
    table
};

/// The IBAN length of a country, if the country uses IBANs.
pub fn iban_length(country: &[u8]) -> Option<usize> {
    let &[a, b] = country else {
        return None;
    };
    if !a.is_ascii_uppercase() || !b.is_ascii_uppercase() {
        return None;
    }
    match IBAN_LENGTH_BY_CODE[usize::from(a - b'A') * 26 + usize::from(b - b'A')] {
        0 => None,
        len => Some(usize::from(len)),
    }
}

/// Full IBAN check on the compact form (no spaces, upper case): country length
/// and ISO 7064 mod-97 = 1.
pub fn iban_valid(compact: &[u8]) -> bool {
    if compact.len() < 15 || compact.len() > 34 {
        return false;
    }
    if iban_length(&compact[..2]) != Some(compact.len()) {
        return false;
    }
    if !compact[2..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let rotated = compact[4..].iter().chain(&compact[..4]);
    // Accumulate in a u64 and reduce only when it grows large: one division
    // every dozen digits instead of one per digit.
    let mut acc: u64 = 0;
    for &b in rotated {
        match b {
            b'0'..=b'9' => acc = acc * 10 + u64::from(b - b'0'),
            b'A'..=b'Z' => acc = acc * 100 + u64::from(b - b'A' + 10),
            _ => return false,
        }
        if acc >= 1 << 56 {
            acc %= 97;
        }
    }
    acc % 97 == 1
}

/// SSNs that were published as examples (wallet inserts, advertisements) and are
/// therefore test data rather than a person's number.
const SAMPLE_SSNS: &[&[u8; 9]] = &[b"078051120", b"219099999", b"457555462", b"123456789"];

/// US SSN rules on the 9 digits: area not 000, 666 or 9xx, group not 00, serial
/// not 0000, and not a well-known sample number.
pub fn ssn_valid(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let area = &digits[..3];
    if area == b"000" || area == b"666" || area[0] == b'9' {
        return false;
    }
    if &digits[3..5] == b"00" || &digits[5..] == b"0000" {
        return false;
    }
    !SAMPLE_SSNS.iter().any(|s| s.as_slice() == digits)
}

/// Whether every byte is an ASCII digit and there is at least one.
fn all_digits(digits: &[u8]) -> bool {
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// Canadian social insurance number, 9 digits: Luhn, and a first digit that
/// the government assigns to people (not 0, used only for fictitious numbers,
/// nor 8, never assigned).
///
/// One random 9-digit number in about 12.5 passes (8 first digits in 10, Luhn
/// one in 10), so a single value proves little; a column of them does.
pub fn sin_valid(digits: &[u8]) -> bool {
    digits.len() == 9
        && all_digits(digits)
        && !matches!(digits[0], b'0' | b'8')
        && luhn_valid(digits)
}

/// Australian tax file number: 9 digits (weights 1 4 3 7 5 8 6 9 10) or the
/// older 8 digits (weights 10 7 8 4 6 3 5 1), weighted sum divisible by 11.
///
/// About one random number in 11 passes.
pub fn tfn_valid(digits: &[u8]) -> bool {
    const W9: [u32; 9] = [1, 4, 3, 7, 5, 8, 6, 9, 10];
    const W8: [u32; 8] = [10, 7, 8, 4, 6, 3, 5, 1];
    if !all_digits(digits) {
        return false;
    }
    let weights: &[u32] = match digits.len() {
        9 => &W9,
        8 => &W8,
        _ => return false,
    };
    let sum: u32 = digits
        .iter()
        .zip(weights)
        .map(|(&b, &w)| u32::from(b - b'0') * w)
        .sum();
    sum.is_multiple_of(11)
}

/// Brazilian CPF (individual taxpayer number), 11 digits: two mod-11 check
/// digits, and not one digit repeated (`111.111.111-11` passes the arithmetic
/// but is a placeholder, never issued).
///
/// About one random number in 100 passes.
pub fn cpf_valid(digits: &[u8]) -> bool {
    if digits.len() != 11 || !all_digits(digits) {
        return false;
    }
    if digits.iter().all(|&b| b == digits[0]) {
        return false;
    }
    let mut d = [0u32; 11];
    for (slot, &b) in d.iter_mut().zip(digits) {
        *slot = u32::from(b - b'0');
    }
    // Check digit k (9 or 10) weights the k digits before it from k+1 down to 2.
    let check = |k: usize| -> u32 {
        let sum: u32 = (0..k).map(|i| d[i] * (k as u32 + 1 - i as u32)).sum();
        (sum * 10) % 11 % 10
    };
    check(9) == d[9] && check(10) == d[10]
}

/// The dihedral group D5 multiplication table of the Verhoeff scheme.
const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];

/// The Verhoeff position permutations (position modulo 8).
const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/// Verhoeff check over ASCII digits (the check digit last); false on any
/// non-digit or on empty input.
///
/// Unlike Luhn it catches every single-digit error and every swap of adjacent
/// digits, which is why Aadhaar uses it.
pub fn verhoeff_valid(digits: &[u8]) -> bool {
    if !all_digits(digits) {
        return false;
    }
    let mut c = 0u8;
    for (i, &b) in digits.iter().rev().enumerate() {
        let p = VERHOEFF_P[i % 8][usize::from(b - b'0')];
        c = VERHOEFF_D[usize::from(c)][usize::from(p)];
    }
    c == 0
}

/// Indian Aadhaar number, 12 digits: first digit 2-9 (0 and 1 are never
/// issued) and a Verhoeff check digit.
///
/// About one random 12-digit number in 12.5 passes.
pub fn aadhaar_valid(digits: &[u8]) -> bool {
    digits.len() == 12 && all_digits(digits) && digits[0] >= b'2' && verhoeff_valid(digits)
}

/// UK National Insurance number, compact (no spaces), either case: two
/// prefix letters, six digits and an optional suffix `A`-`D`.
///
/// HMRC never issues a first letter `D F I Q U V`, a second letter
/// `D F I O Q U V`, nor the prefixes `BG GB KN NK NT TN ZZ` (`TN` marks a
/// temporary number). Without the suffix about half of random two-letter,
/// six-digit codes pass, so a caller should treat that shape as weak evidence.
pub fn nino_valid(compact: &[u8]) -> bool {
    let n = compact.len();
    if n != 8 && n != 9 {
        return false;
    }
    let a = compact[0].to_ascii_uppercase();
    let b = compact[1].to_ascii_uppercase();
    if !a.is_ascii_uppercase() || !b.is_ascii_uppercase() {
        return false;
    }
    if b"DFIQUV".contains(&a) || b"DFIOQUV".contains(&b) {
        return false;
    }
    if [b"BG", b"GB", b"KN", b"NK", b"NT", b"TN", b"ZZ"]
        .iter()
        .any(|p| p[..] == [a, b])
    {
        return false;
    }
    if !compact[2..8].iter().all(u8::is_ascii_digit) {
        return false;
    }
    n == 8 || matches!(compact[8].to_ascii_uppercase(), b'A'..=b'D')
}

/// US ABA routing number: Federal Reserve prefix (00-12, 21-32, 61-72, 80) and
/// the 3-7-1 weighted checksum.
pub fn aba_valid(digits: &[u8]) -> bool {
    if digits.len() != 9 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let mut d = [0u32; 9];
    for (slot, &b) in d.iter_mut().zip(digits) {
        *slot = u32::from(b - b'0');
    }
    let prefix = d[0] * 10 + d[1];
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) {
        return false;
    }
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
    sum.is_multiple_of(10)
}

/// Version bytes of Base58Check addresses we recognise: Bitcoin P2PKH/P2SH and
/// their testnet forms, Litecoin, Dogecoin.
const BASE58_VERSIONS: &[u8] = &[0x00, 0x05, 0x6f, 0xc4, 0x30, 0x32, 0x1e, 0x16];

/// A Base58Check address: 25 bytes once decoded, a known version byte, and the
/// first four bytes of the double SHA-256 as checksum.
pub fn base58check_wallet_valid(s: &[u8]) -> bool {
    if !(26..=35).contains(&s.len()) {
        return false;
    }
    let Some(buf) = base58_decode_25(s) else {
        return false;
    };
    if !BASE58_VERSIONS.contains(&buf[0]) {
        return false;
    }
    let first = Sha256::digest(&buf[..21]);
    let second = Sha256::digest(first);
    second[..4] == buf[21..]
}

/// The value of each Base58 (Bitcoin alphabet) character, 0xff for others.
static BASE58_DIGITS: [u8; 256] = {
    let alphabet = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes Base58 text that decodes to exactly 25 bytes, as `bs58` does:
/// each leading `1` is a leading zero byte, the rest is a big-endian number.
fn base58_decode_25(s: &[u8]) -> Option<[u8; 25]> {
    // The number in four 64-bit limbs, least significant first; 25 bytes
    // need 200 bits, so the top limb stays below 2^8.
    let mut limbs = [0u64; 4];
    for &c in s {
        let digit = BASE58_DIGITS[usize::from(c)];
        if digit == 0xff {
            return None;
        }
        let mut carry = u128::from(digit);
        for limb in &mut limbs {
            let v = u128::from(*limb) * 58 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if limbs[3] >> 8 != 0 {
            return None;
        }
    }
    let mut out = [0u8; 25];
    out[0] = limbs[3] as u8;
    for (k, limb) in limbs[..3].iter().rev().enumerate() {
        out[1 + 8 * k..9 + 8 * k].copy_from_slice(&limb.to_be_bytes());
    }
    // Leading `1`s and leading zero bytes must match: the decoded length is
    // exactly 25.
    let ones = s.iter().take_while(|&&c| c == b'1').count();
    let zeros = out.iter().take_while(|&&b| b == 0).count();
    (ones == zeros).then_some(out)
}

/// A SegWit address in Bech32/Bech32m (`bc1`, `tb1`, `ltc1`) with a valid checksum
/// and witness program.
pub fn bech32_wallet_valid(s: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(s) else {
        return false;
    };
    match bech32::segwit::decode(text) {
        Ok((hrp, _, _)) => {
            let hrp = hrp.to_lowercase();
            matches!(hrp.as_str(), "bc" | "tb" | "ltc" | "tltc")
        }
        Err(_) => false,
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// The six base62 characters GitHub appends to the 30 random characters of a
/// classic token (`ghp_` + 30 + 6): the CRC-32 of the random part.
///
/// The detector does not require it (a secret-shaped false positive costs
/// nothing); it lets tests and tools tell real-looking tokens from typos.
pub fn github_checksum(random: &[u8]) -> [u8; 6] {
    let mut n = crc32(random);
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Whether a classic GitHub token (`ghp_` and friends, 40 characters) carries a
/// valid checksum.
pub fn github_token_checksum_valid(token: &[u8]) -> bool {
    if token.len() != 40 || token[3] != b'_' {
        return false;
    }
    github_checksum(&token[4..34]) == token[34..40]
}

/// Generic and common top-level domains; together with every two-letter country
/// code they make the "plausible TLD" rule for emails. Sorted.
const GENERIC_TLDS: &[&str] = &[
    "aero", "ai", "app", "art", "asia", "biz", "blog", "cat", "cloud", "club", "co", "com", "coop",
    "design", "dev", "edu", "email", "eu", "gov", "info", "int", "io", "jobs", "live", "ltd", "me",
    "media", "mil", "mobi", "name", "net", "news", "online", "org", "page", "pro", "shop", "site",
    "store", "tech", "tel", "travel", "tv", "uk", "us", "web", "website", "work", "xyz",
];

/// Two-letter country-code TLDs in use (ISO 3166-1 plus `uk`, `eu`, `ac`, `su`).
const COUNTRY_TLDS: &str = "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw";

/// [`COUNTRY_TLDS`] as one bit per second letter for each first letter.
static COUNTRY_TLD_BITS: [u32; 26] = {
    let codes = COUNTRY_TLDS.as_bytes();
    let mut table = [0u32; 26];
    let mut i = 0;
    while i + 1 < codes.len() {
        table[(codes[i] - b'a') as usize] |= 1 << (codes[i + 1] - b'a');
        i += 3;
    }
    table
};

/// Whether a top-level domain is plausible for an email address (case-insensitive).
///
/// `user@localhost`, `icon@2x.png` and `lodash@4.17.21` are not emails.
pub fn tld_plausible(tld: &[u8]) -> bool {
    let mut lower = [0u8; 16];
    if tld.len() < 2 || tld.len() > lower.len() {
        return false;
    }
    for (slot, &b) in lower.iter_mut().zip(tld) {
        if !b.is_ascii_alphabetic() {
            return false;
        }
        *slot = b.to_ascii_lowercase();
    }
    let lower = &lower[..tld.len()];
    if lower.len() == 2 {
        return COUNTRY_TLD_BITS[usize::from(lower[0] - b'a')] & (1 << (lower[1] - b'a')) != 0;
    }
    GENERIC_TLDS
        .binary_search_by(|t| t.as_bytes().cmp(lower))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_known_cards_and_rejects_off_by_one() {
        assert!(luhn_valid(b"4111111111111111"));
        assert!(luhn_valid(b"378282246310005"));
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!luhn_valid(b""));
        assert!(!luhn_valid(b"41111x1111111111"));
    }

    #[test]
    fn card_rules_reject_timestamps_and_unknown_schemes() {
        assert!(card_valid(b"4111111111111111"));
        assert!(card_valid(b"5555555555554444"));
        assert!(card_valid(b"378282246310005"));
        assert!(card_valid(b"6011111111111117"));
        assert!(!card_valid(b"1714567890123"), "epoch millis");
        assert!(!card_valid(b"9111111111111111"), "no scheme starts with 9");
        assert!(!card_valid(b"41111111111111"), "Visa is never 14 digits");
    }

    #[test]
    fn iban_checks_length_and_mod97() {
        assert!(iban_valid(b"DE89370400440532013000"));
        assert!(iban_valid(b"GB82WEST12345698765432"));
        assert!(iban_valid(b"FR1420041010050500013M02606"));
        assert!(!iban_valid(b"DE88370400440532013000"), "check digits");
        assert!(!iban_valid(b"DE8937040044053201300"), "length");
        assert!(!iban_valid(b"ZZ89370400440532013000"), "country");
    }

    #[test]
    fn ssn_rules() {
        assert!(ssn_valid(b"536221234"));
        for bad in [
            &b"000221234"[..],
            b"666221234",
            b"900221234",
            b"536001234",
            b"536220000",
            b"078051120",
            b"12345678",
        ] {
            assert!(!ssn_valid(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn sin_rules() {
        // Luhn completions of prefixes chosen for the test.
        for ok in [&b"130456122"[..], b"271938466", b"912345675", b"512345679"] {
            assert!(sin_valid(ok), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"130456123"[..], // Luhn
            b"271938467",      // Luhn
            b"046454286",      // Luhn-valid, but 0 is for fictitious numbers
            b"812345676",      // Luhn-valid, but 8 is never assigned
            b"13045612",       // length
            b"1304561220",
            b"13045612x",
        ] {
            assert!(!sin_valid(bad), "{}", String::from_utf8_lossy(bad));
        }
        assert!(luhn_valid(b"046454286") && luhn_valid(b"812345676"));
    }

    #[test]
    fn tfn_weights() {
        for ok in [
            &b"876543210"[..],
            b"123456782",
            b"463728195",
            b"12345677",
            b"37482910",
        ] {
            assert!(tfn_valid(ok), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"876543211"[..],
            b"123456783",
            b"12345678",
            b"1234567",
            b"1234567820",
            b"12345678a",
        ] {
            assert!(!tfn_valid(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn cpf_check_digits() {
        for ok in [
            &b"52998224725"[..],
            b"11144477735",
            b"39053344705",
            b"00000000191",
        ] {
            assert!(cpf_valid(ok), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"52998224726"[..], // second check digit
            b"52998224715",      // first check digit
            b"11111111111",      // repeated digit: passes the arithmetic, never issued
            b"00000000000",
            b"5299822472",
            b"529982247250",
        ] {
            assert!(!cpf_valid(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn verhoeff_and_aadhaar() {
        // The textbook example: 236 gets check digit 3.
        assert!(verhoeff_valid(b"2363"));
        assert!(!verhoeff_valid(b"2364"));
        assert!(!verhoeff_valid(b"3263"), "adjacent swap is caught");
        assert!(!verhoeff_valid(b""));
        for ok in [&b"234567890124"[..], b"491827364507", b"876543210988"] {
            assert!(aadhaar_valid(ok), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"234567890125"[..], // check digit
            b"324567890124",      // swap
            b"23456789012",       // length
        ] {
            assert!(!aadhaar_valid(bad), "{}", String::from_utf8_lossy(bad));
        }
        // A Verhoeff-valid number starting with 1 is not an Aadhaar number.
        let one = (0..10u8)
            .map(|d| [b"12345678901".as_slice(), &[b'0' + d]].concat())
            .find(|c| verhoeff_valid(c))
            .expect("some check digit completes it");
        assert!(!aadhaar_valid(&one));
    }

    #[test]
    fn nino_prefix_and_suffix_rules() {
        for ok in [
            &b"AB123456C"[..],
            b"ab123456c",
            b"JG103759A",
            b"AB123456",
            b"CE123456D",
        ] {
            assert!(nino_valid(ok), "{}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b"DA123456A"[..], // first letter D
            b"AO123456A",      // second letter O
            b"QQ123456A",      // Q
            b"GB123456A",      // unallocated prefix
            b"TN123456A",      // temporary number
            b"ZZ123456A",
            b"AB123456E", // suffix beyond D
            b"AB12345C",  // five digits
            b"AB1234567", // digit as suffix
            b"1B123456C",
        ] {
            assert!(!nino_valid(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn aba_checksum() {
        assert!(aba_valid(b"021000021"));
        assert!(aba_valid(b"011401533"));
        assert!(!aba_valid(b"021000022"));
        assert!(!aba_valid(b"991000021"), "prefix");
    }

    #[test]
    fn wallets() {
        assert!(base58check_wallet_valid(
            b"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
        ));
        assert!(base58check_wallet_valid(
            b"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
        ));
        assert!(!base58check_wallet_valid(
            b"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3"
        ));
        assert!(bech32_wallet_valid(
            b"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
        ));
        assert!(!bech32_wallet_valid(
            b"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdp"
        ));
    }

    #[test]
    fn github_checksum_round_trips() {
        let random = b"abcdefghijklmnopqrstuvwxyz0123";
        let sum = github_checksum(random);
        let token = [b"ghp_".as_slice(), random, &sum].concat();
        assert!(github_token_checksum_valid(&token));
        let mut broken = token.clone();
        broken[10] ^= 1;
        assert!(!github_token_checksum_valid(&broken));
    }

    #[test]
    fn tlds() {
        assert!(tld_plausible(b"com"));
        assert!(tld_plausible(b"DE"));
        assert!(tld_plausible(b"io"));
        assert!(!tld_plausible(b"png"));
        assert!(!tld_plausible(b"localhost"));
        assert!(!tld_plausible(b"21"));
        assert!(!tld_plausible(b"js"));
    }
}
