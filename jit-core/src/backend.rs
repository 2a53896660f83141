//! Code memory: one Cranelift module holding every translation, the entry
//! trampoline, and the data translated code names by address.

use std::any::Any;

use cranelift_codegen::Context;
use cranelift_codegen::ir::{AbiParam, Function, InstBuilder, Signature, types};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Module, default_libcall_names};

use crate::arena::{CodeArena, CodeFill};
use crate::chain::ChainSlots;
use crate::profile::Profile;

/// The entry of a translation. Translations use a Cranelift calling convention
/// of their own (see [`block_signature`]), so Rust calls them through a
/// [`Trampoline`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockFn(pub *const u8);

// SAFETY: a `BlockFn` is the address of immutable machine code; it is only
// called by the engine's owner, on whatever thread runs it.
unsafe impl Send for BlockFn {}

/// Host-convention function that calls a translation:
/// `(CPU state, translation entry) -> status`.
pub type Trampoline = unsafe extern "C" fn(*mut u8, *const u8) -> u64;

/// The signature of every translation: `(CPU state) -> status`.
///
/// Translations chain into each other with tail calls, and use the calling
/// convention Cranelift made for Winch, which has no callee-saved registers:
/// under the `tail` convention every translation saved and restored five
/// registers on every entry and exit, on each of the hundreds of millions of
/// block transitions of a guest program, and the saves made the code a fifth
/// bigger (Linux boot 6.3 s -> 4.7 s, the perl task 4.2 s -> 2.7 s). The
/// trampoline, in the host's convention, saves what translations clobber.
/// Cranelift's verifier allows tail calls only between `tail` functions, which
/// is one reason it is off (see `new_module`); the code generator handles these
/// register-only signatures the same way.
pub fn block_signature(ptr: types::Type) -> Signature {
    let mut sig = Signature::new(CallConv::Winch);
    sig.params.push(AbiParam::new(ptr));
    sig.returns.push(AbiParam::new(types::I64));
    sig
}

fn new_module(fill: &CodeFill) -> Result<JITModule, String> {
    let mut flags = settings::builder();
    // "speed" costs about 50% more compile time than "none" (37 against 25 µs per
    // guest instruction on RISC-V) and gives about 15% faster code; with tiering,
    // the faster code wins on long-running work and loses little on a Linux boot.
    flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
    // The IR comes from translators whose output the tests cover; checking
    // every function again costs about a tenth of compile time. (The verifier
    // would also refuse tail calls between translations: see `block_signature`.)
    flags
        .set("enable_verifier", "false")
        .map_err(|e| e.to_string())?;
    flags.set("is_pic", "false").map_err(|e| e.to_string())?;
    // Cranelift's x86-64 tail calls (chaining) need frame pointers.
    flags
        .set("preserve_frame_pointers", "true")
        .map_err(|e| e.to_string())?;
    let isa = cranelift_native::builder()
        .map_err(|e| format!("host not supported by Cranelift: {e}"))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    // Translations packed into one arena (see `arena`); other hosts keep
    // cranelift-jit's provider, which also keeps their instruction caches right.
    if cfg!(target_arch = "x86_64") {
        let arena =
            CodeArena::new(fill.clone()).map_err(|e| format!("cannot map code memory: {e}"))?;
        builder.memory_provider(Box::new(arena));
    }
    Ok(JITModule::new(builder))
}

/// Code memory and the Cranelift state to fill it, one function at a time:
/// [`CodeModule::start_function`], build into [`CodeModule::function_parts`],
/// then [`CodeModule::finish_function`].
pub struct CodeModule {
    /// `None` after a failed re-creation: nothing more is compiled.
    module: Option<JITModule>,
    trampoline: Option<Trampoline>,
    /// Data translated code refers to by address (decoded instructions for
    /// helpers, for example): it lives as long as the code, not as long as the
    /// translation that made it.
    kept: Vec<Box<dyn Any + Send>>,
    /// The chain slots of this module's code.
    slots: ChainSlots,
    ctx: Context,
    fctx: FunctionBuilderContext,
    /// Records translations for host profilers (`TURING_PERF_MAP`).
    profile: Option<Profile>,
    /// How full the code memory is.
    fill: CodeFill,
}

impl std::fmt::Debug for CodeModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeModule")
            .field("live", &self.module.is_some())
            .field("kept", &self.kept.len())
            .finish_non_exhaustive()
    }
}

impl CodeModule {
    /// Empty code memory for the host, with its trampoline compiled.
    pub fn new() -> Result<CodeModule, String> {
        let fill = CodeFill::default();
        let module = new_module(&fill)?;
        let ctx = module.make_context();
        let mut code = CodeModule {
            module: Some(module),
            trampoline: None,
            kept: Vec::new(),
            slots: ChainSlots::default(),
            ctx,
            fctx: FunctionBuilderContext::new(),
            profile: Profile::from_env(),
            fill,
        };
        code.trampoline = Some(code.compile_trampoline()?);
        Ok(code)
    }

    /// The function through which Rust enters translations, while the module
    /// lives.
    pub fn trampoline(&self) -> Option<Trampoline> {
        self.trampoline
    }

    /// How full the code memory is, for whoever decides when to flush it.
    pub fn fill(&self) -> CodeFill {
        self.fill.clone()
    }

    /// The host's default calling convention (for helper calls).
    pub fn call_conv(&self) -> Option<CallConv> {
        self.module
            .as_ref()
            .map(|module| module.isa().default_call_conv())
    }

    /// Begins a function of signature `sig`; returns the target's parameters.
    pub fn start_function(&mut self, sig: Signature) -> Result<TargetFrontendConfig, String> {
        let module = self.module.as_ref().ok_or("no code memory")?;
        let config = module.target_config();
        self.ctx.clear();
        self.ctx
            .set_disasm(self.profile.as_ref().is_some_and(|p| p.listing.is_some()));
        self.ctx.func.signature = sig;
        Ok(config)
    }

    /// What a translator builds the started function with: the function, the
    /// builder's scratch state, and the chain slots for its exits.
    pub fn function_parts(
        &mut self,
    ) -> (&mut Function, &mut FunctionBuilderContext, &mut ChainSlots) {
        (&mut self.ctx.func, &mut self.fctx, &mut self.slots)
    }

    /// Compiles the started function into code memory and returns its entry.
    /// `guest_pc` names the code for profilers (`None` for the trampoline).
    pub fn finish_function(&mut self, guest_pc: Option<u64>) -> Result<*const u8, String> {
        let module = self.module.as_mut().ok_or("no code memory")?;
        let id = module
            .declare_anonymous_function(&self.ctx.func.signature)
            .map_err(|e| e.to_string())?;
        module
            .define_function(id, &mut self.ctx)
            .map_err(|e| e.to_string())?;
        let size = self
            .ctx
            .compiled_code()
            .map_or(0, |code| code.code_info().total_size);
        let listing = self.ctx.compiled_code().and_then(|code| code.vcode.clone());
        module.clear_context(&mut self.ctx);
        module.finalize_definitions().map_err(|e| e.to_string())?;
        let entry = module.get_finalized_function(id);
        if let Some(profile) = self.profile.as_mut() {
            profile.record(entry, size, guest_pc, listing.as_deref());
        }
        Ok(entry)
    }

    /// Keeps `data` for as long as the code (translated code may hold its
    /// address); returns where its first element stays.
    pub fn keep<T: Send + 'static>(&mut self, data: Box<[T]>) -> *const T {
        let at = data.as_ptr();
        self.kept.push(Box::new(data));
        at
    }

    /// Throws every translation away and starts on fresh code memory.
    ///
    /// # Safety
    /// No code of this module may be running, and none may be called again:
    /// every pointer into it held outside the module (translation entries,
    /// chain slots, the trampoline) must have been dropped or be unreachable
    /// (for example, behind a bumped chain generation).
    pub unsafe fn flush(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the caller promises that nothing runs or will call into
            // the module's code.
            unsafe { module.free_memory() };
        }
        self.trampoline = None;
        self.kept.clear();
        self.slots = ChainSlots::default();
        self.module = new_module(&self.fill).ok();
        if self.module.is_some() {
            self.trampoline = self.compile_trampoline().ok();
        }
    }

    /// Compiles the host-convention function through which Rust enters
    /// translations.
    fn compile_trampoline(&mut self) -> Result<Trampoline, String> {
        let module = self.module.as_ref().ok_or("no code memory")?;
        let ptr = module.target_config().pointer_type();
        let mut sig = module.make_signature();
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(ptr)]);
        sig.returns.push(AbiParam::new(types::I64));
        let config = self.start_function(sig)?;
        {
            let (func, fctx, _) = self.function_parts();
            let mut b = FunctionBuilder::new(func, fctx);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let (state, target) = (b.block_params(entry)[0], b.block_params(entry)[1]);
            let block_sig = b.import_signature(block_signature(ptr));
            let call = b.ins().call_indirect(block_sig, target, &[state]);
            let status = b.inst_results(call)[0];
            b.ins().return_(&[status]);
            b.seal_all_blocks();
            b.finalize(config);
        }
        let code = self.finish_function(None)?;
        // SAFETY: `code` is the function just defined with the host's C convention
        // and signature `(ptr, ptr) -> i64`; the module keeps it alive until
        // `flush`, which also drops this copy of the pointer.
        Ok(unsafe { std::mem::transmute::<*const u8, Trampoline>(code) })
    }
}
