/**
 * The few Deno declarations the sources use, for the npm build's tsc (which
 * has no Deno lib). ffi/deno.ts and ffi/symbols.ts are the only users; the
 * real types are Deno's own, checked by `deno check`.
 */
declare namespace Deno {
  type NativeType =
    | "i8"
    | "u8"
    | "i16"
    | "u16"
    | "i32"
    | "u32"
    | "i64"
    | "u64"
    | "usize"
    | "isize"
    | "f32"
    | "f64"
    | "pointer"
    | "buffer"
    | "function"
    | "bool";
  interface ForeignFunction {
    name?: string;
    parameters: readonly (NativeType | "void")[];
    result: NativeType | "void";
    nonblocking?: boolean;
    optional?: boolean;
  }
  type ForeignLibraryInterface = Record<string, ForeignFunction>;
  type PointerObject = { readonly __ummuPointer: unique symbol };
  type PointerValue = PointerObject | null;
  function dlopen<S extends ForeignLibraryInterface>(
    path: string | URL,
    symbols: S,
  ): { symbols: Record<keyof S, (...args: any[]) => any>; close(): void };
  const UnsafePointer: {
    create(value: bigint): PointerValue;
    of(value: ArrayBufferView | ArrayBuffer): PointerValue;
    value(value: PointerValue): bigint;
  };
  const UnsafePointerView: {
    getArrayBuffer(pointer: PointerObject, byteLength: number, offset?: number): ArrayBuffer;
  };
  const build: { arch: "x86_64" | "aarch64"; os: string };
  const args: string[];
}

/**
 * `import.meta.main` (Deno, Bun, Node 22.18+): the examples run their main()
 * when started directly. @types/node 20 does not declare it.
 */
interface ImportMeta {
  main?: boolean;
}
