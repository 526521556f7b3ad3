//! The compiler errors a user meets for a wrong handler, as the guide promises them
//! (`docs/guide/handlers-and-extractors.md`): each case in `tests/ui/` must fail to compile
//! with exactly the diagnostic in its `.stderr` file.

#[test]
fn wrong_handlers_are_explained() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
