#![no_main]
//! `vdm_fuzz::targets::rumor_llm_answer` under libFuzzer.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    vdm_fuzz::targets::rumor_llm_answer(data);
});
