//! Names of identity numbers and documents: national identifiers, tax
//! identifiers, passports, driver licences, and the date-of-birth spellings
//! that the general rules miss.
//!
//! These names need rules of their own for two reasons.
//!
//! * **The term contains a metadata word.** `national_id`, `tax_id`,
//!   `taxpayer_id` and `born_on` end in words that the general rules read as
//!   "describes a value" (`email_id` is a reference to an email row, not an
//!   email). Here `id` is part of the term, so these terms are matched before
//!   that veto. A metadata word *after* the term still vetoes:
//!   `national_id_type`, `tax_id_country`, `passport_expiry`,
//!   `passport_issue_date`, `driver_license_class` describe the document, and
//!   `passport_id` (a reference to a passports row) stays unclassified like
//!   `email_id`.
//! * **Abbreviations collide with ordinary words.** `sin` is also the sine,
//!   `tin` a metal, `dl` a download, `nin` and `pps` are rare but short. Such an
//!   abbreviation classifies only when a number word follows it (`sin_no`,
//!   `tin_number`, `dl_num`, joined `sinno`, `dlnumber`) or a party word
//!   precedes it (`employee_sin`, `vendor_tin`, `customer_dl`), and nothing else
//!   follows it (`sin_angle`, `tin_content`, `dl_speed` are not identifiers).
//!   Distinctive abbreviations (`ssn` elsewhere, `nino`, `tfn`, `cpf`, `itin`,
//!   `ppsn`, `dln`, `nric`, `curp`, `dni`, `bsn`, `nif`) also classify alone or
//!   qualified, but again not when another word follows (`cpf_contribution`,
//!   Singapore's provident fund, is an amount).
//!
//! `pass` alone stays a secret (general rules); `passport` is its own word, so
//! `passport_no` is a passport and `pass_no` a secret.

use super::{METADATA_WORDS, Words, in_set};
use crate::Entity;

/// Words that make the word before them "the number of": `sin_no`, `dl_number`.
const NUMBER_WORDS: &[&str] = &["no", "nbr", "nr", "nro", "num", "number", "numero"];

/// Words naming a person or party; before an ambiguous abbreviation they make
/// it that party's identifier (`employee_sin`, `vendor_tin`).
const PARTY_WORDS: &[&str] = &[
    "applicant",
    "beneficiary",
    "borrower",
    "citizen",
    "client",
    "contractor",
    "customer",
    "dependant",
    "dependent",
    "driver",
    "employee",
    "guardian",
    "holder",
    "individual",
    "member",
    "owner",
    "patient",
    "payee",
    "payer",
    "person",
    "recipient",
    "resident",
    "spouse",
    "staff",
    "student",
    "subscriber",
    "supplier",
    "taxpayer",
    "user",
    "vendor",
    "worker",
];

/// Words that, after an identity term, say the column describes the document
/// rather than holding its number (on top of the general metadata words).
const DOCUMENT_METADATA: &[&str] = &[
    "authority",
    "category",
    "class",
    "date",
    "dt",
    "endorsement",
    "endorsements",
    "issue",
    "issued",
    "issuer",
    "place",
    "restriction",
    "restrictions",
];

/// Multi-word terms, matched as consecutive words or as one joined word
/// (`national_id`, `nationalId`, `nationalid`).
const TERMS: &[(&[&str], Entity)] = &[
    (&["national", "id"], Entity::NationalId),
    (&["national", "identifier"], Entity::NationalId),
    (&["national", "identity"], Entity::NationalId),
    (&["national", "identification"], Entity::NationalId),
    (&["natl", "id"], Entity::NationalId),
    (&["national", "insurance"], Entity::NationalId),
    (&["social", "insurance"], Entity::NationalId),
    (&["ni", "number"], Entity::NationalId),
    (&["ni", "no"], Entity::NationalId),
    (&["citizen", "id"], Entity::NationalId),
    (&["voter", "id"], Entity::NationalId),
    (&["identity", "number"], Entity::NationalId),
    (&["identity", "card"], Entity::NationalId),
    (&["identity", "document"], Entity::NationalId),
    (&["id", "card"], Entity::NationalId),
    (&["aadhaar"], Entity::NationalId),
    (&["aadhar"], Entity::NationalId),
    (&["adhaar"], Entity::NationalId),
    (&["personnummer"], Entity::NationalId),
    (&["tax", "id"], Entity::TaxId),
    (&["tax", "identifier"], Entity::TaxId),
    (&["tax", "identification"], Entity::TaxId),
    (&["tax", "number"], Entity::TaxId),
    (&["tax", "no"], Entity::TaxId),
    (&["tax", "num"], Entity::TaxId),
    (&["tax", "file", "number"], Entity::TaxId),
    (&["taxpayer", "id"], Entity::TaxId),
    (&["taxpayer", "identifier"], Entity::TaxId),
    (&["taxpayer", "number"], Entity::TaxId),
    (&["taxpayer", "no"], Entity::TaxId),
    (&["fiscal", "code"], Entity::TaxId),
    (&["fiscal", "id"], Entity::TaxId),
    (&["fiscal", "number"], Entity::TaxId),
    (&["codice", "fiscale"], Entity::TaxId),
    (&["passport"], Entity::Passport),
    (&["driver", "license"], Entity::DriverLicense),
    (&["driver", "licence"], Entity::DriverLicense),
    (&["drivers", "license"], Entity::DriverLicense),
    (&["drivers", "licence"], Entity::DriverLicense),
    (&["driving", "license"], Entity::DriverLicense),
    (&["driving", "licence"], Entity::DriverLicense),
    (&["birth", "dt"], Entity::DateOfBirth),
    (&["dt", "of", "birth"], Entity::DateOfBirth),
    (&["born", "on"], Entity::DateOfBirth),
    (&["born", "date"], Entity::DateOfBirth),
    (&["bday"], Entity::DateOfBirth),
];

/// Abbreviations: the word, its entity, and whether it is distinctive enough
/// to classify without a number word or a party word around it.
const ABBREVIATIONS: &[(&str, Entity, bool)] = &[
    ("sin", Entity::NationalId, false),
    ("nin", Entity::NationalId, false),
    ("pps", Entity::NationalId, false),
    ("nino", Entity::NationalId, true),
    ("ppsn", Entity::NationalId, true),
    ("nric", Entity::NationalId, true),
    ("curp", Entity::NationalId, true),
    ("dni", Entity::NationalId, true),
    ("bsn", Entity::NationalId, true),
    ("tin", Entity::TaxId, false),
    ("itin", Entity::TaxId, true),
    ("tfn", Entity::TaxId, true),
    ("cpf", Entity::TaxId, true),
    ("nif", Entity::TaxId, true),
    ("dl", Entity::DriverLicense, false),
    ("dln", Entity::DriverLicense, true),
];

/// The identity entity a name holds, if one of the rules above says so.
pub(super) fn classify(words: &Words) -> Option<Entity> {
    term(words).or_else(|| abbreviation(words))
}

fn term(words: &Words) -> Option<Entity> {
    for &(parts, entity) in TERMS {
        for start in 0..words.count {
            if let Some(end) = match_term(words, start, parts) {
                return describes_the_value(words, end).then_some(entity);
            }
        }
    }
    None
}

/// Where the term ends (exclusive word index) when it starts at `start`,
/// written as separate words or joined into one.
fn match_term(words: &Words, start: usize, parts: &[&str]) -> Option<usize> {
    let end = start + parts.len();
    if end <= words.count
        && parts
            .iter()
            .enumerate()
            .all(|(k, p)| words.word(start + k) == p.as_bytes())
    {
        return Some(end);
    }
    joined_equals(words.word(start), parts).then_some(start + 1)
}

/// `nationalid`, `passportno`, `taxidnumber`: the parts run together, maybe
/// with a number word at the end.
fn joined_equals(word: &[u8], parts: &[&str]) -> bool {
    let mut rest = word;
    for p in parts {
        match rest.strip_prefix(p.as_bytes()) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty() || in_set(rest, NUMBER_WORDS)
}

/// No word after the term describes it instead of holding it.
fn describes_the_value(words: &Words, end: usize) -> bool {
    (end..words.count).all(|i| {
        let w = words.word(i);
        !in_set(w, METADATA_WORDS) && !in_set(w, DOCUMENT_METADATA)
    })
}

fn abbreviation(words: &Words) -> Option<Entity> {
    for i in 0..words.count {
        let word = words.word(i);
        for &(abbr, entity, distinctive) in ABBREVIATIONS {
            let a = abbr.as_bytes();
            // `sin_no`, `sin_number`: the abbreviation, then only number words.
            let separate =
                word == a && (i + 1..words.count).all(|k| in_set(words.word(k), NUMBER_WORDS));
            let numbered_after = separate && i + 1 < words.count;
            // `sinno`, `dlnumber`: joined with a number word, nothing after.
            let joined = i + 1 == words.count
                && word
                    .strip_prefix(a)
                    .is_some_and(|rest| in_set(rest, NUMBER_WORDS));
            let party_before = i > 0 && in_set(words.word(i - 1), PARTY_WORDS);
            if joined || (separate && (distinctive || numbered_after || party_before)) {
                return Some(entity);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::{Entity, classify_name};

    #[test]
    fn national_identifiers() {
        for name in [
            "national_id",
            "nationalId",
            "NationalID",
            "nationalid",
            "nationalidno",
            "national_id_number",
            "natl_id",
            "customer_national_id",
            "national_insurance_number",
            "ni_number",
            "NINumber",
            "nino",
            "employee_nino",
            "nino_no",
            "sin_no",
            "sin_number",
            "SINNumber",
            "sinno",
            "employee_sin",
            "social_insurance_number",
            "aadhaar",
            "aadhaar_no",
            "aadhar_number",
            "id_card",
            "id_card_number",
            "identity_number",
            "citizen_id",
            "ppsn",
            "bsn",
            "dni",
            "curp",
            "nric",
        ] {
            assert_eq!(classify_name(name), Some(Entity::NationalId), "{name}");
        }
    }

    #[test]
    fn tax_identifiers() {
        for name in [
            "tax_id",
            "taxId",
            "taxid",
            "tax_id_number",
            "tax_number",
            "tax_no",
            "taxpayer_id",
            "tax_file_number",
            "tfn",
            "employee_tfn",
            "cpf",
            "cpf_number",
            "customer_cpf",
            "tin_no",
            "tin_number",
            "vendor_tin",
            "payee_tin",
            "itin",
            "fiscal_code",
            "codice_fiscale",
            "nif",
        ] {
            assert_eq!(classify_name(name), Some(Entity::TaxId), "{name}");
        }
    }

    #[test]
    fn documents_and_birth_dates() {
        for (name, want) in [
            ("passport", Entity::Passport),
            ("passport_no", Entity::Passport),
            ("passport_number", Entity::Passport),
            ("passportNumber", Entity::Passport),
            ("passportno", Entity::Passport),
            ("traveller_passport", Entity::Passport),
            ("driver_license", Entity::DriverLicense),
            ("drivers_licence_no", Entity::DriverLicense),
            ("driving_licence_number", Entity::DriverLicense),
            ("driverLicenseNumber", Entity::DriverLicense),
            ("dl_number", Entity::DriverLicense),
            ("dl_no", Entity::DriverLicense),
            ("dlnumber", Entity::DriverLicense),
            ("customer_dl", Entity::DriverLicense),
            ("dln", Entity::DriverLicense),
            ("dob", Entity::DateOfBirth),
            ("birth_dt", Entity::DateOfBirth),
            ("birthdt", Entity::DateOfBirth),
            ("dt_of_birth", Entity::DateOfBirth),
            ("born_on", Entity::DateOfBirth),
            ("bday", Entity::DateOfBirth),
            ("date_of_birth", Entity::DateOfBirth),
            ("ssn", Entity::Ssn),
        ] {
            assert_eq!(classify_name(name), Some(want), "{name}");
        }
    }

    #[test]
    fn look_alikes_are_not_identifiers() {
        for name in [
            // Trigonometry, metals, downloads.
            "sin",
            "cos",
            "sin_angle",
            "angle_sin",
            "x_sin",
            "tin",
            "tin_content",
            "tin_pct",
            "dl",
            "dl_url",
            "dl_count",
            "dl_speed",
            "dl_link",
            "nin",
            "pps",
            // Describing the document, not its number.
            "national_id_type",
            "national_id_verified",
            "tax_id_country",
            "tax_code",
            "tax_amount",
            "tax_rate",
            "tax_total",
            "passport_expiry",
            "passport_expiry_date",
            "passport_issue_date",
            "passport_country",
            "passport_id",
            "driver_license_state",
            "driver_license_class",
            "driver_id",
            "license_number",
            "cpf_contribution",
            "cpf_amount",
            "nino_verified",
            // Neither word alone.
            "birth_place",
            "passenger_count",
            "id",
            "number",
            "national",
            "insurance_no",
        ] {
            assert_eq!(classify_name(name), None, "{name}");
        }
        // `pass` alone stays a secret.
        assert_eq!(classify_name("pass_no"), Some(Entity::Secret));
    }
}
