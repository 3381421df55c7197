mod issues;
mod kernel;
mod pool;
mod runtime;
