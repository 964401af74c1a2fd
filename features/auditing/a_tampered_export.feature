Feature: A tampered case file
  As an auditor who takes case files home,
  I want to verify a case file on my own machine with nothing but casebook installed,
  so that I can tell a faithful file from one that was altered or cut short after it left the register.

  Another person's case is opened first, so that the case's events do not sit at the
  first positions of the register's chain.

  Background:
    Given the case worker has opened a case for the civilian internee "Narek Probyan", a national of AM
    And the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to the ICRC
    And the case worker has recorded that AZ handed the person over to RU at "Goris" on 2020-12-01, according to the ICRC
    And the admin has made a checkpoint, and the auditor has kept it

  Scenario: The case file as the register gave it verifies on the auditor's machine
    When the auditor takes the case file home
    Then the register answers 200
    And the file holds the case's 3 events, each with the hash its history shows
    And the file's links verify on the auditor's machine, and it says a case file alone is not anchored to the register
    And replayed from the file, the person is held by RU at "Goris"

  Scenario: One byte of one event's stored bytes is changed
    Given the auditor has taken the case file home
    When one byte of the case's event 2 is changed in the file
    And the auditor verifies the file on their machine
    Then the file is found broken at the position of the case's event 2

  Scenario: The last event's stored bytes are changed
    Given the auditor has taken the case file home
    When one byte of the case's event 3 is changed in the file
    And the auditor verifies the file on their machine
    Then the file is found broken at the position of the case's event 3

  Scenario: The file is cut short
    Given the auditor has taken the case file home
    When the file is cut short after the case's event 2
    And the auditor verifies the file on their machine
    Then the file is found broken: "cut short"
