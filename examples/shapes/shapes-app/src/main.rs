use shapes_lib::geometry::{Area, Shape};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("panic") {
        shapes_lib::explode("on purpose");
    }
    let shapes = vec![Shape::Circle { r: 1.0 }, Shape::Rect { w: 2.0, h: 3.0 }];
    println!("total area: {:.3}", shapes_lib::total_area(shapes.clone()));
    println!("squares: {:?}", shapes_lib::squares(&shapes).map(|x| x.round()).collect::<Vec<_>>());
    let mut s = Shape::unit();
    s.scale(2.0).scale(1.5);
    println!("scaled: {}", s.label());
    match shapes_lib::parse("hexagon:1") {
        Ok(_) => println!("parsed?"),
        Err(e) => println!("error: {e}"),
    }
    let sum = shapes_lib::exec::block_on(shapes_lib::measure_all(vec!["circle:2".into(), "rect:1:4".into()]));
    println!("measured: {:.3}", sum.unwrap_or(-1.0));
    println!("fib on a thread: {}", shapes_lib::on_thread(4));
    if args.first().map(String::as_str) == Some("exit") {
        std::process::exit(3);
    }
}
