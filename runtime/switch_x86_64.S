/* x86_64 System V context switch; see switch.h.
 *
 * Saved frame, from the saved stack pointer upwards:
 *   0: MXCSR (4 bytes), 4: x87 control word (2 bytes), 6: padding
 *   8: r15, 16: r14, 24: r13, 32: r12, 40: rbx, 48: rbp, 56: return address
 * The pushes follow the same order on every stack, so the CFI below stays
 * right across the stack-pointer exchange in the middle of the function. */

#if defined(__x86_64__)

    .text

    .globl  crew__ctx_switch
    .hidden crew__ctx_switch
    .type   crew__ctx_switch, @function
    .p2align 4
crew__ctx_switch:
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movl    (%rsp), %eax
    movzwl  4(%rsp), %ecx

    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp

    /* Load only the control words that differ: the result is the same, and
     * nearly every switch goes between contexts with the same (default)
     * ones, while ldmxcsr and the microcoded fldcw were most of the
     * switch's cost (perf: ~60 % of its samples on them). */
    cmpl    (%rsp), %eax
    je      1f
    ldmxcsr (%rsp)
1:
    cmpw    4(%rsp), %cx
    je      2f
    fldcw   4(%rsp)
2:
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    movq    %rdx, %rax      /* return value on a resumed context */
    movq    %rdx, %rdi      /* first argument on a fresh context's entry */
    ret
    .cfi_endproc
    .size   crew__ctx_switch, .-crew__ctx_switch

/* First code a fresh context runs: r12 holds the entry function (placed in
 * the initial frame by crew__ctx_make), rdi the switch's arg. rbp is 0, so
 * the entry function's saved frame pointer ends the chain. */
    .globl  crew__ctx_trampoline
    .hidden crew__ctx_trampoline
    .type   crew__ctx_trampoline, @function
    .p2align 4
crew__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined %rip
    /* crew__ctx_make points the first return here + 1: unwinders look up the
     * caller at return address - 1, which must fall inside this function's
     * CFI (where the return address is undefined), not before it. */
    nop
    xorl    %ebp, %ebp
    callq   *%r12
    ud2
    .cfi_endproc
    .size   crew__ctx_trampoline, .-crew__ctx_trampoline

#endif

    .section .note.GNU-stack,"",@progbits
