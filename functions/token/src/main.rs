//! The `token` Lambda function: wiring only; the logic is in `gatehouse_core`.

use gatehouse_core::router::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    gatehouse_core::lambda::run(Function::Token).await
}
