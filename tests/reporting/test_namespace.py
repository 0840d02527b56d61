"""`tc.report` is the function users call; the subpackage has a name it cannot shadow."""

import inspect

import tfcompress as tc
import tfcompress.reporting


def test_report_is_the_function_and_reporting_the_package():
    assert inspect.isfunction(tc.report)
    assert tc.reporting is tfcompress.reporting
    assert tc.report is tfcompress.reporting.report
    assert tc.register_layer is tfcompress.reporting.register_layer
