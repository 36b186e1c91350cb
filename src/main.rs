fn main() {
    let path = std::env::args().nth(1).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let src = gradc::source_text(&bytes).unwrap();
    match gradc::compile(src) {
        Ok(c) => {
            println!("{}", c.raw);
            println!("{}", c.ir);
        }
        Err(ds) => eprintln!("{}", gradc::diagnostic::render_all(&ds, &path, src, false)),
    }
}
