"""The words of Typer's own copy of Click in the command's language.

Typer (0.2x) carries its own copy of Click (`typer._click`), which writes its texts in
English without gettext: `use_process_language_for_libraries` reaches Typer's help panels
and error box, but not the usage line, the help of `--help` and of the completion options,
or the errors a technician meets most (a missing option, a wrong value, a misspelt
option). Those few are given Vietnamese here, with the catalog entries of the real Click's
same texts where it has them.

Installed only for a language other than English, so an English command prints exactly
what Typer prints. Each replacement keeps Typer's own logic and changes only the words;
tests/edge_agent/test_cli_language.py runs the installed command in Vietnamese, so a Typer
release that moves one of these places fails there rather than in the field.
"""

import typer.main
from typer._click import core, exceptions, formatting
from typer.core import TyperOption

from iotruntime.i18n import ENGLISH, _, process_language


def _parameter_hint(error: exceptions.BadParameter) -> str | None:
    if error.param_hint is not None:
        return exceptions._join_param_hints(error.param_hint)
    if error.param is not None:
        return exceptions._join_param_hints(error.param.get_error_hint())
    return None


def _bad_parameter(self: exceptions.BadParameter) -> str:
    hint = _parameter_hint(self)
    if hint is None:
        return _("Invalid value: {message}").format(message=self.message)
    return _("Invalid value for {param_hint}: {message}").format(
        param_hint=hint, message=self.message
    )


def _missing_what(param_type: str | None) -> str:
    if param_type == "argument":
        return _("Missing argument")
    if param_type == "option":
        return _("Missing option")
    if param_type == "parameter":
        return _("Missing parameter")
    return _("Missing {param_type}").format(param_type=param_type)


def _missing_parameter(self: exceptions.MissingParameter) -> str:
    hint = _parameter_hint(self)
    param_type = self.param_type
    if param_type is None and self.param is not None:
        param_type = self.param.param_type_name
    message = self.message
    if self.param is not None:
        extra = self.param.get_missing_message(ctx=self.ctx)
        if extra:
            message = f"{message}. {extra}" if message else extra
    missing = _missing_what(param_type) + (f" {hint}" if hint else "") + "."
    return f"{missing} {message}" if message else missing


def _no_such_option(self: exceptions.NoSuchOption) -> str:
    message = self.message
    if message == f"No such option: {self.option_name}":
        message = _("No such option: {name}").format(name=self.option_name)
    if not self.possibilities:
        return message
    suggestion = _("(Possible options: {possibilities})").format(
        possibilities=", ".join(sorted(self.possibilities))
    )
    return f"{message} {suggestion}"


def use_process_language_for_typer() -> None:
    """Give Typer's copy of Click the process's language (see the module's docstring)."""
    if process_language() == ENGLISH:
        return
    write_usage = formatting.HelpFormatter.write_usage
    get_help_option = core.Command.get_help_option
    completion_options = typer.main.get_install_completion_arguments

    def usage(
        self: formatting.HelpFormatter, prog: str, args: str = "", prefix: str | None = None
    ) -> None:
        write_usage(self, prog, args, _("Usage:") + " " if prefix is None else prefix)

    def help_option(self: core.Command, ctx: core.Context) -> TyperOption | None:
        option = get_help_option(self, ctx)
        if option is not None:
            option.help = _("Show this message and exit.")
        return option

    def completion() -> tuple[core.Parameter, core.Parameter]:
        install, show = completion_options()
        for option, text in (
            (install, _("Install completion for the current shell.")),
            (show, _("Show completion for the current shell, to copy it or customize it.")),
        ):
            if isinstance(option, TyperOption):
                option.help = text
        return install, show

    typer.main.get_install_completion_arguments = completion
    formatting.HelpFormatter.write_usage = usage  # type: ignore[method-assign]
    core.Command.get_help_option = help_option  # type: ignore[method-assign]
    exceptions.BadParameter.format_message = _bad_parameter  # type: ignore[method-assign]
    exceptions.MissingParameter.format_message = _missing_parameter  # type: ignore[method-assign]
    exceptions.NoSuchOption.format_message = _no_such_option  # type: ignore[method-assign]
