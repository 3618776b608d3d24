/* AArch64 (AAPCS64) context switch; see switch.h.
 *
 * Saved frame, from the saved stack pointer upwards (176 bytes, so sp stays
 * 16-byte aligned as AAPCS64 requires at every instruction):
 *     0: x29 (fp), 8: x30 (lr)
 *    16: x19 .. 88: x28
 *    96: d8 .. 152: d15 (only the low 64 bits of v8-v15 are callee-saved)
 *   160: FPCR, 168: padding
 * Every stack holds the same layout at the same offsets, so the CFI below
 * stays right across the stack-pointer exchange in the middle of the
 * function. There is no return-address slot: `ret` jumps to the x30 loaded
 * from the resumed frame. */

#if defined(__aarch64__)

/* A BTI landing pad for calls that reach crew__ctx_switch through a linker
 * veneer (br x16/x17). It is in the hint space, so older cores run it as a
 * NOP. */
#define CREW_BTI_C hint 34

    .text

    .globl  crew__ctx_switch
    .hidden crew__ctx_switch
    .type   crew__ctx_switch, %function
    .p2align 4
crew__ctx_switch:
    .cfi_startproc
    CREW_BTI_C
    sub     sp, sp, #176
    .cfi_def_cfa_offset 176
    stp     x29, x30, [sp, #0]
    .cfi_rel_offset x29, 0
    .cfi_rel_offset x30, 8
    stp     x19, x20, [sp, #16]
    .cfi_rel_offset x19, 16
    .cfi_rel_offset x20, 24
    stp     x21, x22, [sp, #32]
    .cfi_rel_offset x21, 32
    .cfi_rel_offset x22, 40
    stp     x23, x24, [sp, #48]
    .cfi_rel_offset x23, 48
    .cfi_rel_offset x24, 56
    stp     x25, x26, [sp, #64]
    .cfi_rel_offset x25, 64
    .cfi_rel_offset x26, 72
    stp     x27, x28, [sp, #80]
    .cfi_rel_offset x27, 80
    .cfi_rel_offset x28, 88
    stp     d8, d9, [sp, #96]
    .cfi_rel_offset d8, 96
    .cfi_rel_offset d9, 104
    stp     d10, d11, [sp, #112]
    .cfi_rel_offset d10, 112
    .cfi_rel_offset d11, 120
    stp     d12, d13, [sp, #128]
    .cfi_rel_offset d12, 128
    .cfi_rel_offset d13, 136
    stp     d14, d15, [sp, #144]
    .cfi_rel_offset d14, 144
    .cfi_rel_offset d15, 152
    mrs     x9, fpcr
    str     x9, [sp, #160]

    mov     x10, sp
    str     x10, [x0]
    ldr     x10, [x1]
    mov     sp, x10

    /* Writing FPCR can stall the pipeline on some cores, and nearly every
     * switch goes between contexts with the same FPCR, so write only when
     * the resumed context's value differs from the one just left. */
    ldr     x10, [sp, #160]
    cmp     x9, x10
    b.eq    1f
    msr     fpcr, x10
1:
    ldp     d14, d15, [sp, #144]
    .cfi_restore d14
    .cfi_restore d15
    ldp     d12, d13, [sp, #128]
    .cfi_restore d12
    .cfi_restore d13
    ldp     d10, d11, [sp, #112]
    .cfi_restore d10
    .cfi_restore d11
    ldp     d8, d9, [sp, #96]
    .cfi_restore d8
    .cfi_restore d9
    ldp     x27, x28, [sp, #80]
    .cfi_restore x27
    .cfi_restore x28
    ldp     x25, x26, [sp, #64]
    .cfi_restore x25
    .cfi_restore x26
    ldp     x23, x24, [sp, #48]
    .cfi_restore x23
    .cfi_restore x24
    ldp     x21, x22, [sp, #32]
    .cfi_restore x21
    .cfi_restore x22
    ldp     x19, x20, [sp, #16]
    .cfi_restore x19
    .cfi_restore x20
    ldp     x29, x30, [sp, #0]
    .cfi_restore x29
    .cfi_restore x30
    add     sp, sp, #176
    .cfi_def_cfa_offset 0
    mov     x0, x2          /* return value on a resumed context, first argument on a fresh one's entry */
    ret
    .cfi_endproc
    .size   crew__ctx_switch, .-crew__ctx_switch

/* First code a fresh context runs, reached by crew__ctx_switch's `ret`: x19
 * holds the entry function (placed in the initial frame by crew__ctx_make),
 * x0 the switch's arg, and sp is the aligned top of the stack. x29 is 0, so
 * the entry function's frame record ends the frame-pointer chain.
 *
 * crew__ctx_make points the fresh frame's lr past the leading nop. Unwinders
 * look a caller up at its return address minus one; without the nop that
 * address would fall before this function, outside any CFI, and a debugger
 * stopped in the first switch into a fresh context would walk off the top of
 * its stack. */
    .globl  crew__ctx_trampoline
    .hidden crew__ctx_trampoline
    .type   crew__ctx_trampoline, %function
    .p2align 4
crew__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    nop
    mov     x29, #0
    blr     x19
    brk     #0x3c
    .cfi_endproc
    .size   crew__ctx_trampoline, .-crew__ctx_trampoline

/* Tell the linker that this object keeps the branch-protection guarantees
 * the C objects were built with (BTI landing pads; return addresses are never
 * signed here, so PAC-ret code around it is unaffected). Without the note, a
 * library built with -mbranch-protection would silently lose BTI as a whole. */
#if defined(__ARM_FEATURE_BTI_DEFAULT) || defined(__ARM_FEATURE_PAC_DEFAULT)
#if defined(__ARM_FEATURE_BTI_DEFAULT)
#define CREW_FEATURE_BTI 1
#else
#define CREW_FEATURE_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT)
#define CREW_FEATURE_PAC 2
#else
#define CREW_FEATURE_PAC 0
#endif
    .pushsection .note.gnu.property, "a"
    .p2align 3
    .word   4                       /* name size: "GNU\0" */
    .word   16                      /* descriptor size */
    .word   5                       /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .word   0xc0000000              /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .word   4                       /* property data size */
    .word   CREW_FEATURE_BTI | CREW_FEATURE_PAC
    .word   0                       /* padding to 8 bytes */
    .popsection
#endif

#endif

    .section .note.GNU-stack,"",%progbits
